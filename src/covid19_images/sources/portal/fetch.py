"""``fetch``: download a portal source's pinned files, verify all of them, then extract atomically.

Order of work, per source, under a per-source OS lock (two fetches of one source are
serialised; the kernel releases the lock of a killed one):

1. the lock (``manifests/locks/<name>.lock.tsv``) says what to get; without one nothing is
   requested (a maintainer pins it with ``sync --update-portal``);
2. each missing file is downloaded into ``<git dir>/covid19-images-downloads/<name>/<path>.part``
   (resumed where a cut left it) or taken from ``--from DIR``, and checked against the lock's
   size, sha256 and the portal's own hash; a file that differs is refused by name, deleted,
   and nothing else is touched;
3. only when every file passed: a staging folder ``datasets/.<name>.staging-<pid>`` gets the
   entries already present (hard links) and the new ones (safe extraction), then the marker
   (:mod:`~covid19_images.sources.portal.state`), then it is renamed over ``datasets/<name>``.
A fetch killed at any point leaves either the old complete folder or no complete one; the
next fetch removes the leftovers and resumes the downloads.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import filelock
import git
import requests

from covid19_images.core.atomic import fsync_dir, sync_filesystem_of
from covid19_images.core.failpoints import checkpoint
from covid19_images.core.paths import DATASETS_DIR
from covid19_images.sources.portal.extract import extract, is_archive, place_file
from covid19_images.sources.portal.http import PortalError, download, file_hashes, make_session
from covid19_images.sources.portal.lock import LockEntry, PortalLock, current_digest, read_lock
from covid19_images.sources.portal.mirror import UrlRewriter
from covid19_images.sources.portal.portals import auth_for
from covid19_images.sources.portal.state import MARKER, FetchState, file_sizes, read_state, source_dir, write_state
from covid19_images.sources.registry import SourceSpec

DOWNLOADS_DIR = "covid19-images-downloads"
LOCKS_DIR = "covid19-images-fetch"


class ChangedUpstream(PortalError):
    """A downloaded file is not what the lock pins (the portal changed it, or served an error page)."""


@dataclass
class FetchPlan:
    """What a fetch of one source will do (``--dry-run`` prints it)."""

    name: str
    missing: list[LockEntry]
    present: list[LockEntry]
    partial_bytes: int = 0

    @property
    def bytes_to_get(self) -> int:
        return sum(e.size for e in self.missing) - self.partial_bytes

    def describe(self) -> str:
        if not self.missing and not self.present:
            return f"{self.name}: the selection needs none of its files"
        if not self.missing:
            return f"{self.name}: all {len(self.present)} file(s) already fetched"
        resumed = f" ({self.partial_bytes} bytes already downloaded)" if self.partial_bytes else ""
        return f"{self.name}: {len(self.missing)} file(s), {self.bytes_to_get} bytes to download{resumed}"


def git_dir(root: Path) -> Path:
    try:
        return Path(git.Repo(root).git_dir)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return Path(root) / ".covid19-images"


def downloads_of(root: Path, name: str) -> Path:
    """Where a source's downloads are kept: in the git dir, never tracked nor shown as untracked."""
    return git_dir(root) / DOWNLOADS_DIR / name


def require_lock(root: Path, spec: SourceSpec) -> PortalLock:
    lock = read_lock(root, spec.name)
    if lock is None:
        raise PortalError(
            f"{spec.name}: no lock yet (manifests/locks/{spec.name}.lock.tsv); a maintainer pins the portal's files "
            f"with `covid19-images sync --update-portal {spec.name}`"
        )
    return lock


def plan(root: Path, spec: SourceSpec, wanted: set[str] | None = None) -> FetchPlan:
    """The lock entries still missing from ``datasets/<name>`` (only those in ``wanted`` when given)."""
    lock = require_lock(root, spec)
    folder = source_dir(root, spec.name)
    state = read_state(folder)
    entries = [e for e in lock.entries if wanted is None or e.path in wanted]
    # an entry whose files were deleted or truncated since is fetched again (from the kept download if intact)
    present = [e for e in entries if state.has(e.path, e.sha256) and not state.damaged(folder, e.path)]
    missing = [e for e in entries if e not in present]
    folder = downloads_of(root, spec.name)
    partial = 0
    for entry in missing:
        for candidate in (folder / entry.path, folder / f"{entry.path}.part"):
            if candidate.is_file():
                partial += min(candidate.stat().st_size, entry.size)
                break
    return FetchPlan(spec.name, missing, present, partial)


def target_of(spec: SourceSpec, entry: LockEntry) -> tuple[bool, str]:
    """``(extract?, where)``: the folder an archive unpacks into, or the path a plain file takes."""
    listed = {str(item["name"]): item for item in spec.files}
    declared = listed.get(entry.path, {})
    if spec.portal == "tcia" and entry.path not in listed:  # a series: its own folder
        return True, entry.path.removesuffix(".zip")
    extract_it = bool(declared.get("extract", is_archive(entry.path)))
    if extract_it:
        return True, str(declared.get("into", "") or PurePosixPath(entry.path).parent.as_posix().strip("."))
    return False, str(declared.get("into", "") and f"{declared['into']}/{PurePosixPath(entry.path).name}") or entry.path


def _find_manual(from_dir: Path, entry: LockEntry) -> Path | None:
    for candidate in (from_dir / entry.path, from_dir / PurePosixPath(entry.path).name):
        if candidate.is_file():
            return candidate
    return None


def _verify(spec: SourceSpec, entry: LockEntry, size: int, sha256: str, md5: str, origin: str) -> None:
    portal_ok = not md5 or not entry.portal_hash.startswith("md5:") or entry.portal_hash == f"md5:{md5}"
    if size == entry.size and sha256 == entry.sha256 and portal_ok:
        return
    raise ChangedUpstream(
        f"{spec.name}: {entry.path} from {origin} is not the pinned file: the lock records {entry.size} bytes, "
        f"sha256 {entry.sha256[:16]}…, got {size} bytes, sha256 {sha256[:16]}…. It was refused and the fetched "
        f"copy was left as it was. If the portal really changed it, a maintainer reviews the change with "
        f"`covid19-images sync --update-portal {spec.name}`."
    )


def obtain(
    root: Path,
    spec: SourceSpec,
    entry: LockEntry,
    *,
    session: requests.Session,
    rewriter: UrlRewriter,
    from_dir: Path | None = None,
    progress: bool = True,
) -> Path:
    """The verified download of ``entry`` in the downloads folder (downloaded, resumed or copied in)."""
    final = downloads_of(root, spec.name) / entry.path
    part = final.with_name(final.name + ".part")
    if final.is_file():
        kept = file_hashes(final)
        if kept.size == entry.size and kept.sha256 == entry.sha256:
            return final
        final.unlink()
    if from_dir is not None:
        found = _find_manual(from_dir, entry)
        if found is None:
            raise PortalError(
                f"{spec.name}: {entry.path} is not in {from_dir}; download it by hand"
                + (f" from {spec.terms_url}" if spec.terms_url else "")
                + " and put it there"
            )
        part.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, part)
        origin = str(found)
    elif entry.locator.startswith("manual:"):
        raise PortalError(
            f"{spec.name}: this dataset is behind an agreement and cannot be downloaded by the API. Accept its terms "
            f"at {spec.terms_url or spec.homepage}, download {entry.path} by hand, then run "
            f"`covid19-images fetch {spec.name} --from <folder holding it>`"
        )
    else:
        auth, hint = auth_for(spec)
        url = rewriter.rewrite(entry.locator)
        origin = url
        # sha256 only: the lock's sha256 was pinned from a file checked against the portal's md5
        got = download(
            session, url, part, what=f"{spec.name}: {entry.path}", size=entry.size, terms_url=spec.terms_url,
            auth=auth, hint=hint, progress=progress, digests=("sha256",),
        )  # fmt: skip
    if from_dir is not None or entry.locator.startswith("manual:"):
        got = file_hashes(part)
    try:
        _verify(spec, entry, got.size, got.sha256, got.md5, origin)
    except ChangedUpstream:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, final)
    checkpoint("fetch.verified")
    return final


def _clean_leftovers(root: Path, name: str) -> None:
    """Remove staging folders of killed fetches; put back a folder a kill left renamed aside."""
    base = Path(root) / DATASETS_DIR
    current = source_dir(root, name)
    for old in sorted(base.glob(f".{name}.old-*")):
        if not current.exists() and read_state(old).lock:
            os.replace(old, current)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for staging in base.glob(f".{name}.staging-*"):
        shutil.rmtree(staging, ignore_errors=True)


def _ignore_in_git(root: Path, name: str) -> None:
    """``datasets/<name>/`` and its staging folders are git-ignored (in ``info/exclude``: no tracked change)."""
    exclude = git_dir(root) / "info" / "exclude"
    lines = [f"/{DATASETS_DIR}/{name}/", f"/{DATASETS_DIR}/.{name}.*"]
    try:
        text = exclude.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    missing = [line for line in lines if line not in text.splitlines()]
    if missing:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with open(exclude, "a", encoding="utf-8") as out:
            out.write(("" if not text or text.endswith("\n") else "\n") + "\n".join(missing) + "\n")


def _link_tree(files: list[str], source: Path, target: Path) -> None:
    for relative in files:
        place_file(source / relative, target / relative)


def _build(root: Path, spec: SourceSpec, lock: PortalLock, got: dict[str, Path], keep: list[LockEntry]) -> None:
    """Stage the new folder (kept entries linked, new ones extracted), mark it, swap it in."""
    base = Path(root) / DATASETS_DIR
    current = source_dir(root, spec.name)
    staging = base / f".{spec.name}.staging-{os.getpid()}"
    old_state = read_state(current)
    state = FetchState(current_digest(root, spec.name))
    try:
        staging.mkdir(parents=True)
        for entry in keep:
            files = list(old_state.entries[entry.path].get("files", []))
            _link_tree(files, current, staging)
            state.entries[entry.path] = {"sha256": entry.sha256, "files": files, "sizes": file_sizes(staging, files)}
        for entry in lock.entries:
            if entry.path not in got:
                continue
            unpack, where = target_of(spec, entry)
            if unpack:
                written = extract(got[entry.path], staging / where if where else staging)
                files = [f"{where}/{f}" if where else f for f in written]
                if MARKER in files:
                    raise PortalError(f"{spec.name}: {entry.path} holds a member named {MARKER}; refused")
            else:
                place_file(got[entry.path], staging / where)
                files = [where]
            state.entries[entry.path] = {"sha256": entry.sha256, "files": files, "sizes": file_sizes(staging, files)}
            checkpoint("fetch.extracted")
        # the marker vouches for the files by size alone: they reach the disk before it does
        sync_filesystem_of(staging)
        write_state(staging, state)
        checkpoint("fetch.staged")
        aside = base / f".{spec.name}.old-{os.getpid()}"
        if current.exists():
            os.replace(current, aside)
        checkpoint("fetch.swapping")
        os.replace(staging, current)
        fsync_dir(base)
        shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@dataclass
class FetchResult:
    name: str
    fetched: int
    present: int
    bytes: int


def fetch_source(
    root: Path,
    spec: SourceSpec,
    *,
    wanted: set[str] | None = None,
    from_dir: Path | None = None,
    progress: bool = True,
    session: requests.Session | None = None,
    rewriter: UrlRewriter | None = None,
    wait: float = -1,
) -> FetchResult:
    """Fetch ``spec`` (only the lock entries in ``wanted`` when given) into ``datasets/<name>``."""
    root = Path(root)
    session = session or make_session()
    rewriter = rewriter or UrlRewriter.from_git(root)
    lock_file = git_dir(root) / LOCKS_DIR / f"{spec.name}.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(lock_file), timeout=wait):
        checkpoint("fetch.locked")
        _clean_leftovers(root, spec.name)
        _ignore_in_git(root, spec.name)
        lock = require_lock(root, spec)
        todo = plan(root, spec, wanted)
        current_ok = read_state(source_dir(root, spec.name)).lock == current_digest(root, spec.name)
        got = {
            e.path: obtain(root, spec, e, session=session, rewriter=rewriter, from_dir=from_dir, progress=progress)
            for e in todo.missing
        }
        if got or not current_ok:
            folder = source_dir(root, spec.name)
            state = read_state(folder)
            keep = [
                e for e in lock.entries
                if e.path not in got and state.has(e.path, e.sha256) and not state.damaged(folder, e.path)
            ]  # fmt: skip
            _build(root, spec, lock, got, keep)
        return FetchResult(spec.name, len(got), len(todo.present), sum(e.size for e in todo.missing))
