"""Released versions of a root: git tags, and the manifest files as they were at one.

A release (``covid19-images release 2026.12``) is an annotated tag in the data root. What a
version holds is read straight from git objects through GitPython (the tag's tree), never by
checking anything out: the work tree, the index and the submodules stay as they are, so a
notebook can load last year's version while a sync runs on the same root. The bytes read are
checked against the integrity record committed beside them, as for the files on disk.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import git
import pandas as pd

from covid19_images.manifest import integrity
from covid19_images.manifest.annotations import annotations_from_bytes
from covid19_images.manifest.io import ANNOTATIONS_FILE, MANIFEST_FILE, PROBLEMS_FILE, manifest_from_bytes
from covid19_images.sources.portal.lock import LOCKS_DIR, lock_digest
from covid19_images.sources.registry import DATASETS_DIR

#: calendar versions: ``2026.12``, or ``2026.12.1`` for a second release in a month
VERSION_PATTERN = re.compile(r"^(?P<year>20\d\d)\.(?P<month>1[0-2]|[1-9])(?:\.(?P<patch>[1-9]\d{0,2}))?$")


class UnknownVersion(LookupError):
    """No release tag of that name; the message lists the versions there are."""


def is_version(name: str) -> bool:
    return bool(VERSION_PATTERN.match(name))


def version_key(name: str) -> tuple[int, int, int]:
    """Sort key of a calendar version (``2026.9`` before ``2026.10``)."""
    found = VERSION_PATTERN.match(name)
    if not found:
        raise ValueError(f"{name!r} is not a calendar version (YEAR.MONTH or YEAR.MONTH.N, e.g. 2026.12)")
    return int(found["year"]), int(found["month"]), int(found["patch"] or 0)


def release_tags(root: Path) -> list[str]:
    """The root's release tags (calendar versions), oldest first."""
    repo = git.Repo(root)
    return sorted((t.name for t in repo.tags if is_version(t.name)), key=version_key)


def version_commit(root: Path, version: str) -> git.Commit:
    """The commit a release tag points at; :class:`UnknownVersion` naming the versions there are."""
    repo = git.Repo(root)
    if version in repo.tags and is_version(version):
        return repo.tags[version].commit
    known = ", ".join(release_tags(root)) or "none yet (`covid19-images release VERSION` makes one)"
    raise UnknownVersion(f"{root} has no release {version!r}; its releases: {known}")


def file_at(commit: git.Commit, relative: str) -> bytes | None:
    """The bytes of ``relative`` (a path in the root) in ``commit``'s tree, or None if it has none."""
    try:
        blob = commit.tree / relative
    except KeyError:
        return None
    return blob.data_stream.read()


def _checked(commit: git.Commit, relative: str, label: str) -> bytes | None:
    data = file_at(commit, relative)
    if data is None:
        return None
    record = file_at(commit, integrity.record_path(Path(relative)).as_posix())
    try:
        integrity.check(Path(relative), data, None if record is None else record.decode("utf-8", "replace"))
    except integrity.DamagedManifest as err:
        raise integrity.DamagedManifest(f"release {label}: {err}") from err
    return data


def manifest_in(commit: git.Commit, label: str) -> pd.DataFrame | None:
    """``manifests/manifest.csv`` in ``commit`` (checked against its record), or None if it has none."""
    data = _checked(commit, MANIFEST_FILE, label)
    return None if data is None else manifest_from_bytes(data)


def manifest_at(root: Path, version: str) -> pd.DataFrame:
    """``manifests/manifest.csv`` as it was at ``version`` (strings, as :func:`read_manifest` gives)."""
    frame = manifest_in(version_commit(root, version), version)
    if frame is None:
        raise UnknownVersion(f"release {version!r} of {root} holds no {MANIFEST_FILE}")
    return frame


def annotations_at(root: Path, version: str) -> pd.DataFrame | None:
    """``manifests/annotations.csv`` as it was at ``version``, or None if it had none."""
    data = _checked(version_commit(root, version), ANNOTATIONS_FILE, version)
    return None if data is None else annotations_from_bytes(data)


def problems_in(commit: git.Commit) -> pd.DataFrame:
    """``manifests/problems.csv`` in ``commit`` (empty if it has none)."""
    data = file_at(commit, PROBLEMS_FILE)
    if not data:
        return pd.DataFrame(columns=["level", "source", "path", "row", "message"])
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[])


def pins_at(commit: git.Commit) -> dict[str, str]:
    """``source -> pinned commit`` of every gitlink under ``datasets/`` in ``commit``'s tree."""
    try:
        datasets = commit.tree / DATASETS_DIR
    except KeyError:
        return {}
    return {Path(item.path).name: item.hexsha for item in datasets if item.type == "submodule"}


def locks_at(commit: git.Commit) -> dict[str, str]:
    """``portal source -> lock digest`` of every ``manifests/locks/<name>.lock.tsv`` in ``commit``'s tree.

    A portal source's lock is what its gitlink is to a git source: the digest is the version's pin.
    """
    suffix = ".lock.tsv"
    try:
        locks = commit.tree / LOCKS_DIR
    except KeyError:
        return {}
    return {
        item.name[: -len(suffix)]: lock_digest(item.data_stream.read())
        for item in locks
        if item.type == "blob" and item.name.endswith(suffix)
    }


__all__ = [
    "VERSION_PATTERN",
    "UnknownVersion",
    "annotations_at",
    "file_at",
    "is_version",
    "locks_at",
    "manifest_at",
    "manifest_in",
    "pins_at",
    "problems_in",
    "release_tags",
    "version_commit",
    "version_key",
]
