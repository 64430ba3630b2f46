"""``covid19-images release VERSION``: a version a paper can name, cite and load back.

A release is a commit that adds the version's section to ``CHANGELOG.md`` and rewrites
``CITATION.cff`` and ``manifests/croissant.json``, and an annotated tag ``VERSION`` on it. It
is refused unless the work tree is clean (what is tagged is exactly what was checked) and
``verify`` passes (every file the manifest names is on disk with its hash; nothing damaged),
and unless ``VERSION`` is a calendar version newer than every earlier release. The Croissant
document is validated with ``mlcroissant`` before anything is written. Nothing is pushed:
publishing (``git push --follow-tags``) is the maintainer's decision.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import git

from covid19_images.core.atomic import write_atomic
from covid19_images.manifest.build import read_manifest
from covid19_images.manifest.versions import release_tags, version_key
from covid19_images.release.changelog import CHANGELOG_FILE, render_section, write_section
from covid19_images.release.changes import collect_changes
from covid19_images.release.citation import CITATION_FILE, COLLECTION_CROISSANT, citation_cff, collection_croissant
from covid19_images.sources.registry import load_registry

RELEASE_FILES = (CHANGELOG_FILE, CITATION_FILE, COLLECTION_CROISSANT)


class ReleaseRefused(RuntimeError):
    """The root is not in a state that can be released; the message says what to do."""


@dataclass
class ReleaseResult:
    version: str
    previous: str | None
    commit: str
    section: str


def _dirty(repo: git.Repo) -> list[str]:
    """Paths with uncommitted changes, untracked files or moved/modified submodules."""
    status = repo.git.status("--porcelain", "--untracked-files=all", "--ignore-submodules=none")
    paths = [line[3:] for line in status.splitlines() if line.strip()]
    return [p for p in paths if not p.startswith(".cache/")]  # the loaders' pixel cache is not data


def _check_version(root: Path, version: str) -> str | None:
    """Refuse a malformed, existing or older version; return the previous release (or None)."""
    try:
        key = version_key(version)
    except ValueError as err:
        raise ReleaseRefused(str(err)) from None
    tags = release_tags(root)
    if version in git.Repo(root).tags:
        raise ReleaseRefused(f"tag {version} already exists in {root}; releases are never moved: choose a new version")
    if tags and version_key(tags[-1]) >= key:
        raise ReleaseRefused(f"{version} is not newer than the latest release {tags[-1]}")
    return tags[-1] if tags else None


def validate_croissant(path: Path) -> None:
    """Raise ReleaseRefused unless ``mlcroissant`` reads ``path`` without an error."""
    try:
        import mlcroissant as mlc
    except ImportError as err:
        raise ReleaseRefused(
            f"release validates Croissant with mlcroissant, which cannot be imported ({err}): "
            'pip install "covid19-images[release]"'
        ) from err
    try:
        mlc.Dataset(jsonld=str(path))
    except mlc.ValidationError as err:
        raise ReleaseRefused(f"{path} does not validate with mlcroissant:\n{err}") from err


def _check_clean_and_verified(root: Path, repo: git.Repo, progress: bool) -> None:
    from covid19_images.quality.verify import NoManifest, verify

    dirty = _dirty(repo)
    if dirty:
        shown = ", ".join(dirty[:10]) + (f" … ({len(dirty)} in all)" if len(dirty) > 10 else "")
        raise ReleaseRefused(
            f"the work tree of {root} is not clean ({shown}): commit or discard the changes "
            "(`covid19-images sync --commit` commits a sync) and release again"
        )
    try:
        result = verify(root, progress=progress)
    except NoManifest as err:
        raise ReleaseRefused(str(err)) from err
    if not result.ok:
        raise ReleaseRefused(
            f"`covid19-images verify` fails on {root}; a release must describe files that are really there:\n"
            + result.summary(limit=20)
        )


def release(
    root: Path, version: str, *, date: str | None = None, progress: bool = True, dry_run: bool = False
) -> ReleaseResult:
    """Write the release files of ``version``, commit them and tag the commit (see the module docstring).

    ``dry_run`` makes every check and returns the changelog section, writing nothing.
    """
    root = Path(root).resolve()
    repo = git.Repo(root)
    previous = _check_version(root, version)
    _check_clean_and_verified(root, repo, progress)
    date = date or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    manifest = read_manifest(root)
    assert manifest is not None  # verify passed
    registry = load_registry(root)
    changes = collect_changes(root, previous, "HEAD")
    section = render_section(version, date, changes)
    if dry_run:
        return ReleaseResult(version, previous, "", section)
    texts = {
        CHANGELOG_FILE: write_section(root, section),
        CITATION_FILE: citation_cff(version, date, manifest, registry),
    }
    document = collection_croissant(root, version, date, manifest, registry)
    texts[COLLECTION_CROISSANT] = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    try:
        for relative, text in texts.items():
            write_atomic(root / relative, text.encode("utf-8"))
        validate_croissant(root / COLLECTION_CROISSANT)
        repo.git.add("--", *RELEASE_FILES)
        with repo.git.custom_environment(**_identity(repo)):
            repo.git.commit("--quiet", "-m", f"release {version}\n\n{section}", "--", *RELEASE_FILES)
    except BaseException:
        _restore(repo, root)
        raise
    with repo.git.custom_environment(**_identity(repo)):
        repo.git.tag("-a", version, "-m", f"covid19-images {version}\n\n{section}")
    return ReleaseResult(version, previous, repo.head.commit.hexsha, section)


def _identity(repo: git.Repo) -> dict[str, str]:
    """The committer git would use, or a neutral one when the root has none configured."""
    import os

    from covid19_images.sync.run import _git_identity

    return _git_identity(dict(os.environ), repo)


def _restore(repo: git.Repo, root: Path) -> None:
    """Put the release files back as HEAD has them (a refused or failed release leaves the tree clean)."""
    tracked = set(repo.git.ls_files("--", *RELEASE_FILES).splitlines())
    repo.git.reset("--quiet", "HEAD", "--", *RELEASE_FILES)
    for relative in RELEASE_FILES:
        if relative in tracked:
            repo.git.checkout("HEAD", "--", relative)
        else:
            (root / relative).unlink(missing_ok=True)
