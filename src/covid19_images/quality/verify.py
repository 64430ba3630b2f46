"""``verify``: do the files on disk still match the manifest?

A manifest is only worth citing if the bytes behind it are the bytes it describes. This
re-hashes every referenced file (and with ``decode`` re-decodes it), and looks for
image-like files in the checkouts that nothing explains. Mismatches, each one failing:

* ``missing``: a row's file is not on disk;
* ``changed``: its bytes no longer hash to the row's ``sha256``;
* ``undecodable`` / ``pixels_differ`` (``decode`` only): it no longer decodes, or decodes
  to other pixels than the manifest recorded (a changed decoder: re-run ``sync``);
* ``stale``: a checkout is at another commit than the one the manifest was built from;
* ``unreferenced``: an image-like file (by its bytes, not its name) that no row references,
  that the build did not report as a problem, and that is not part of the upstream commit
  (an untracked or locally modified file, or any such file in a folder that is not a git
  checkout).

``manifests/annotations.csv`` is checked too (:mod:`covid19_images.quality.verify_annotations`):
``annotations_damaged`` (not the file the last sync wrote), ``annotation_files`` (a file
holding annotations is missing or changed), ``annotation_orphans`` (annotations of an
image the manifest does not hold), each failing. ``dup_groups``: a row whose duplicate group
is not the one a fresh search gives (:mod:`covid19_images.quality.verify_groups`).

Image-like files that *are* part of the upstream commit but that the source's parser does
not index (ieee8023's lung masks, pictures metadata.csv does not name) are listed as
``upstream_unused`` for information: they are upstream's business, not a mismatch.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import git
import pandas as pd

from covid19_images.core.paths import DATASETS_DIR, shown_path
from covid19_images.core.progress import progress_bar
from covid19_images.core.workers import io_workers
from covid19_images.imaging.formats import (
    DECODABLE_FORMATS,
    read_head,
    sniff_format,
)
from covid19_images.imaging.probe import fingerprints, sha256_file
from covid19_images.manifest.build import PROBLEMS_FILE, read_manifest
from covid19_images.quality.verify_annotations import verify_annotations
from covid19_images.quality.verify_groups import verify_groups
from covid19_images.sources.git import head_commit

IMAGE_LIKE = frozenset(DECODABLE_FORMATS)
FAILING = (
    "missing",
    "changed",
    "undecodable",
    "pixels_differ",
    "stale",
    "unreferenced",
    "annotations_damaged",
    "annotation_files",
    "annotation_orphans",
    "dup_groups",
)


class NoManifest(FileNotFoundError):
    """There is nothing to verify yet."""


@dataclass
class VerifyResult:
    """The findings of :func:`verify`, one list per kind (each item names ``source`` and ``path``)."""

    checked: int = 0
    missing: list[dict[str, str]] = field(default_factory=list)
    changed: list[dict[str, str]] = field(default_factory=list)
    undecodable: list[dict[str, str]] = field(default_factory=list)
    pixels_differ: list[dict[str, str]] = field(default_factory=list)
    stale: list[dict[str, str]] = field(default_factory=list)
    unreferenced: list[dict[str, str]] = field(default_factory=list)
    upstream_unused: list[dict[str, str]] = field(default_factory=list)
    annotations_checked: int = 0
    annotations_damaged: list[dict[str, str]] = field(default_factory=list)
    annotation_files: list[dict[str, str]] = field(default_factory=list)
    annotation_orphans: list[dict[str, str]] = field(default_factory=list)
    dup_groups: list[dict[str, str]] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        """How many findings fail the check (everything but ``upstream_unused``)."""
        return sum(len(getattr(self, name)) for name in FAILING)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return self.mismatches == 0

    def to_dict(self) -> dict:
        """JSON-ready findings plus ``mismatches`` and ``ok`` (``verify --json``)."""
        return {**asdict(self), "mismatches": self.mismatches, "ok": self.ok}

    def summary(self, limit: int = 50) -> str:
        """Human-readable listing: every failing category with up to ``limit`` entries each."""
        annotations = f" and {self.annotations_checked} annotations" if self.annotations_checked else ""
        lines = [f"checked {self.checked} files{annotations}: {self.mismatches} mismatch(es)"]
        for name in FAILING:
            items = getattr(self, name)
            if not items:
                continue
            lines.append(f"{name.replace('_', ' ')}: {len(items)}")
            for item in items[:limit]:
                lines.append("  " + _describe(name, item))
            if len(items) > limit:
                lines.append(f"  … and {len(items) - limit} more (--json lists all)")
        if self.upstream_unused:
            by_source = pd.Series([i["source"] for i in self.upstream_unused]).value_counts().sort_index()
            listed = ", ".join(f"{source} {count}" for source, count in by_source.items())
            lines.append(
                f"note: {len(self.upstream_unused)} image-like upstream files are not indexed by their parser "
                f"({listed}); not a mismatch"
            )
        return "\n".join(lines)


def _describe(kind: str, item: dict[str, str]) -> str:
    where = item.get("path", "")
    if kind == "changed":
        return f"{where}: sha256 {item['actual'][:12]}…, manifest says {item['expected'][:12]}…"
    if kind == "pixels_differ":
        return f"{where}: decoded pixels differ from the manifest's (decoder changed? re-run sync)"
    if kind == "undecodable":
        return f"{where}: {item['error']}"
    if kind == "stale":
        return (
            f"{item['source']}: checkout at {item['checkout'][:12] or 'nothing'}, manifest built from "
            f"{item['manifest'][:12]}; run `covid19-images sync --offline` (or check out the pinned commit)"
        )
    if kind == "unreferenced":
        return f"{where} ({item['format']}, {item['why']})"
    if kind == "annotations_damaged":
        return item["error"]
    if kind == "annotation_files":
        if item["why"] == "changed":
            return f"{where} (changed): sha256 {item['actual'][:12]}…, annotations.csv says {item['expected'][:12]}…"
        return f"{where} ({item['why']})"
    if kind == "annotation_orphans":
        return f"{where}: {item['count']} annotation(s) of images not in the manifest ({item['image_ids']})"
    if kind == "dup_groups":
        return (
            f"{where}: duplicate group {item['stored'] or '(none)'} in the manifest, {item['fresh'] or '(none)'} by a "
            "fresh search (the stored near-duplicate index was edited?); run `covid19-images sync --offline --rebuild`"
        )
    if kind == "missing":
        return f"{where}{' (' + item['hint'] + ')' if item.get('hint') else ''}"
    return where


def _git_lines(directory: Path, *args: str) -> list[str] | None:
    """NUL-separated git output lines, or None when ``directory`` is not a usable git checkout.

    Read as bytes and decoded with ``surrogateescape``: a file name that is not UTF-8 must
    still be compared, not crash the check.
    """
    if not (directory / ".git").exists():
        return None
    try:
        out = git.Git(directory).execute(["git", *args], stdout_as_string=False, env={"LC_ALL": "C"})
    except (OSError, git.GitError):
        return None
    return [part for part in bytes(out).decode("utf-8", "surrogateescape").split("\0") if part]


def _reported(root: Path) -> set[str]:
    """Root-relative paths the last build reported as problems (already explained).

    A problem's ``path`` is always relative to its source folder (``Problem.path``), so the
    root-relative path is ``datasets/<source>/<path>``; a blank path names no file.
    """
    path = root / PROBLEMS_FILE
    if not path.is_file():
        return set()
    problems = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {
        f"{DATASETS_DIR}/{source}/{relative}"
        for source, relative in zip(problems.get("source", []), problems.get("path", []), strict=True)
        if relative
    }


def _check_row(root: Path, row: dict[str, str], decode: bool) -> dict[str, dict[str, str]]:
    path = root / row["path"]
    found: dict[str, dict[str, str]] = {}
    base = {"source": row["source"], "path": row["path"]}
    if not path.is_file():
        found["missing"] = base
        return found
    try:
        digest = sha256_file(path)
    except OSError as err:
        found["undecodable"] = {**base, "error": f"cannot read: {err}"}
        return found
    if row.get("sha256") and digest != row["sha256"]:
        found["changed"] = {**base, "expected": row["sha256"], "actual": digest}
    if decode:
        from covid19_images.imaging.decode import decode_file

        try:
            pixels = decode_file(path, frame=None, fmt=row.get("format") or None).pixels
        except Exception as err:  # noqa: BLE001 - every decoder failure is a finding, not a crash
            found["undecodable"] = {**base, "error": f"{type(err).__name__}: {err}"}
            return found
        pixel_sha, _phash = fingerprints(pixels)
        if row.get("pixel_sha256") and pixel_sha != row["pixel_sha256"] and "changed" not in found:
            found["pixels_differ"] = {**base, "expected": row["pixel_sha256"], "actual": pixel_sha}
    return found


def _source_dirs(root: Path, manifest: pd.DataFrame) -> dict[str, Path]:
    names = set(manifest["source"])
    datasets = root / DATASETS_DIR
    if datasets.is_dir():
        names |= {p.name for p in datasets.iterdir() if p.is_dir()}
    return {name: datasets / name for name in sorted(names) if (datasets / name).is_dir()}


def _walk(directory: Path) -> Iterable[Path]:
    """Regular files only: opening a FIFO or a device to sniff it would block or never end."""
    for current, folders, files in os.walk(directory):
        folders[:] = [f for f in folders if f != ".git"]
        for name in files:
            path = Path(current) / name
            try:
                if stat.S_ISREG(path.stat().st_mode):
                    yield path
            except OSError:  # broken symlink or loop: sync reported it
                continue


def _portal_sources(root: Path) -> set[str]:
    from covid19_images.sources.registry import RegistryError, load_registry

    try:
        return {name for name, spec in load_registry(root).items() if spec.is_portal}
    except RegistryError:
        return set()


def _fetched_files(directory: Path) -> set[str]:
    """The files a portal fetch put in ``directory`` (its marker lists them); empty for any other folder."""
    from covid19_images.sources.portal.state import read_state

    return {str(f) for entry in read_state(directory).entries.values() for f in entry.get("files", [])}


def _scan_checkout(
    root: Path, name: str, directory: Path, referenced: set[str], reported: set[str], result: VerifyResult
) -> None:
    tracked = _git_lines(directory, "ls-files", "-z")
    untracked = set(_git_lines(directory, "ls-files", "-z", "--others") or [])
    modified = set(_git_lines(directory, "diff", "--name-only", "-z") or [])
    tracked_set = set(tracked or [])
    fetched = _fetched_files(directory) if tracked is None else set()
    for path in _walk(directory):
        relative_to_root = shown_path(path.relative_to(root).as_posix())
        if relative_to_root in referenced or relative_to_root in reported:
            continue
        relative = path.relative_to(directory).as_posix()
        if shown_path(relative) != relative:
            continue  # a name that is not UTF-8: sync reported it as a problem (with backslash escapes)
        try:
            fmt = sniff_format(read_head(path))
        except OSError:
            continue
        if fmt not in IMAGE_LIKE:
            continue
        item = {"source": name, "path": relative_to_root, "format": fmt}
        if tracked is None and relative in fetched:
            result.upstream_unused.append(item)  # a portal file its fetch put there, as a checkout's tracked file
        elif tracked is None:
            result.unreferenced.append({**item, "why": "in no row; neither a git checkout nor put there by a fetch"})
        elif relative in untracked or relative not in tracked_set:
            result.unreferenced.append({**item, "why": "untracked file in the checkout"})
        elif relative in modified:
            result.unreferenced.append({**item, "why": "locally modified upstream file"})
        else:
            result.upstream_unused.append(item)


def verify(
    root: Path,
    manifest: pd.DataFrame | None = None,
    *,
    decode: bool = False,
    progress: bool = True,
    workers: int | None = None,
) -> VerifyResult:
    """Check every manifest row against the files under ``root``; see the module docstring.

    Args:
        root: the project root.
        manifest: the manifest to check (default: the one written under ``root``).
        decode: also decode every file and compare its pixel hash (slow).
        progress: show progress bars.
        workers: hashing threads (default: :func:`~covid19_images.core.workers.io_workers`).

    Raises:
        NoManifest: there is no manifest to check.
    """
    root = Path(root)
    manifest = read_manifest(root) if manifest is None else manifest
    if manifest is None:
        raise NoManifest(f"no manifest under {root}; run `covid19-images sync` first")
    result = VerifyResult(checked=len(manifest))
    records = manifest.to_dict("records")
    dirs = _source_dirs(root, manifest)
    portal = _portal_sources(root)

    for source, rows in manifest.groupby("source", sort=True):
        commits = {c for c in rows["source_commit"] if c}
        if source in dirs and commits:
            head = head_commit(dirs[source]) or ""
            if head and head not in commits:
                result.stale.append({"source": str(source), "checkout": head, "manifest": sorted(commits)[0]})

    with ThreadPoolExecutor(max_workers=io_workers(workers)) as pool:
        outcomes = pool.map(lambda row: _check_row(root, row, decode), records)
        for row, found in progress_bar(
            zip(records, outcomes, strict=True),
            asked=progress,
            total=len(records),
            desc="decoding" if decode else "hashing",
            unit="file",
        ):
            for kind, item in found.items():
                if kind in ("missing", "changed") and row["source"] in portal:
                    item["hint"] = f"a portal source's fetched file: `covid19-images fetch {row['source']}` restores it"
                elif kind == "missing" and row["source"] not in dirs:
                    item["hint"] = (
                        f"{row['source']} not checked out: git submodule update --init datasets/{row['source']}"
                    )
                getattr(result, kind).append(item)

    referenced = set(manifest["path"])
    reported = _reported(root)
    for name, directory in progress_bar(dirs.items(), asked=progress, desc="scanning checkouts", unit="source"):
        _scan_checkout(root, name, directory, referenced, reported, result)
    verify_annotations(root, manifest, result, progress=progress, workers=workers)
    verify_groups(root, manifest, result)
    for name in (*FAILING, "upstream_unused"):
        getattr(result, name).sort(key=lambda item: (item.get("source", ""), item.get("path", "")))
    return result
