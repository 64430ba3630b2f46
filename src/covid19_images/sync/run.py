"""``sync``: move each submodule to its upstream tip, rebuild the manifest, say what changed.

One source failing (unreachable, rewritten, locally modified) never stops the others,
and the manifest is only replaced once the new one is completely built. Syncs are meant to
run unattended (cron mirrors), so a sync killed at any point leaves the last good manifest
in place, and the next one cleans up after it: leftover temporary files, git lock files of
the dead run, and a submodule it had moved but not yet pinned.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import filelock
import git
import pandas as pd

from covid19_images.core.atomic import remove_temporaries, write_atomic
from covid19_images.core.failpoints import checkpoint
from covid19_images.imaging.budget import budget_settings
from covid19_images.manifest.annotations import ANNOTATIONS_FILE
from covid19_images.manifest.build import (
    MANIFEST_FILE,
    PROBLEMS_FILE,
    BuildResult,
    build_manifest,
    read_manifest,
    remove_stale_temporaries,
    write_manifest,
)
from covid19_images.manifest.diff import SourceChange, diff_manifests
from covid19_images.manifest.integrity import record_path
from covid19_images.manifest.reviews import REVIEWS_FILE
from covid19_images.manifest.source_cache import cache_dir_of
from covid19_images.manifest.splits import SplitMove, explain_split_moves, format_split_moves
from covid19_images.sources.git import (
    SourceSyncError,
    SourceUpdate,
    check_gitmodules,
    gitlink,
    open_repo,
    update_source,
)
from covid19_images.sources.portal.lock import lock_path
from covid19_images.sources.portal.state import presence
from covid19_images.sources.registry import REGISTRY_FILE, load_registry
from covid19_images.sources.transport import git_environment
from covid19_images.sync.record import SYNC_RECORD_FILE, write_sync_record
from covid19_images.sync.shrink import Shrink, find_shrinks, restore_checkout

LOCK_NAME = "covid19-images-sync.lock"  # kept in the root's git dir: never shows up as an untracked file
PID_NAME = "covid19-images-sync.pid"


class SyncBusy(RuntimeError):
    """Another sync holds the lock on this root."""


class UnknownSourceError(LookupError):
    """A source named on the command line (or by a caller) is not in the registry.

    A user error with a one-line answer (the known names), so the CLI catches exactly this
    and nothing broader: a ``KeyError`` from a bug inside sync must keep its traceback.
    """


@dataclass
class SyncReport:
    """What one :func:`sync` did: per-source updates, manifest changes, the build, notes."""

    updates: list[SourceUpdate] = field(default_factory=list)
    changes: dict[str, SourceChange] = field(default_factory=dict)
    build: BuildResult | None = None
    committed: str | None = None
    notes: list[str] = field(default_factory=list)
    split_moves: list[SplitMove] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceUpdate]:
        """Sources that were refused or failed (the CLI exits 1 when there are any)."""
        return [u for u in self.updates if u.status in ("failed", "refused")]

    def summary(self) -> str:
        """One line per source: ``old→new commit, +N images, −M images, K relabelled``."""
        lines: list[str] = []
        names = list(dict.fromkeys([u.name for u in self.updates] + sorted(self.changes)))
        updates = {u.name: u for u in self.updates}
        for name in names:
            update = updates.get(name)
            change = self.changes.get(name, SourceChange(name))
            old = (update.old or "none")[:12] if update else "-"
            new = (update.new or "none")[:12] if update else "-"
            status = (
                f" [{update.status}: {update.message}]" if update and update.status in ("refused", "failed") else ""
            )
            moved = f", {len(change.moved)} changed split" if change.moved else ""
            lines.append(
                f"{name}: {old}→{new}, +{len(change.added)} images, −{len(change.removed)} images, "
                f"{len(change.relabelled)} relabelled{moved}{status}"
            )
        if self.split_moves:
            lines.append(format_split_moves(self.split_moves))
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _lock_paths(root: Path) -> tuple[Path, Path]:
    git_dir = Path(git.Repo(root).git_dir)
    return git_dir / LOCK_NAME, git_dir / PID_NAME


def _write_pid(pid_path: Path) -> None:
    write_atomic(pid_path, str(os.getpid()).encode("ascii"))


def _acquire(root: Path, wait: bool) -> tuple[filelock.BaseFileLock, tuple[str, float] | None]:
    """Take the root's sync lock; also return ``(pid, start time)`` of a sync that died holding it.

    The lock is an OS lock (``flock``), released by the kernel when its holder dies, so a
    killed sync never blocks the next one. The pid file is only for the message; a pid
    file found once we hold the lock was left by a sync that did not finish.
    """
    lock_path, pid_path = _lock_paths(root)
    lock = filelock.FileLock(str(lock_path), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except filelock.Timeout:
        try:
            pid = pid_path.read_text(encoding="ascii").strip() or "unknown"
        except OSError:
            pid = "unknown"
        raise SyncBusy(f"sync already running (pid {pid}) on {root}; wait for it or use --wait") from None
    try:
        stale: tuple[str, float] | None = (
            pid_path.read_text(encoding="ascii").strip() or "unknown",
            pid_path.stat().st_mtime,
        )
    except OSError:
        stale = None
    _write_pid(pid_path)
    checkpoint("sync.locked")
    return lock, stale


_GIT_LOCKS = ("index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock", "FETCH_HEAD.lock")


def _remove_stale_git_locks(root: Path, repo: git.Repo, since: float) -> list[str]:
    """Delete git lock files a killed sync left behind (created after it started).

    git refuses to work while ``index.lock`` & co. exist, so without this one killed run
    would stop every later cron run. Only locks younger than the dead sync's pid file are
    touched: older ones belong to something else and are reported by git as usual.
    """
    git_dir = Path(repo.git_dir)
    git_dirs = [git_dir, *sorted(p for p in (git_dir / "modules").glob("*") if p.is_dir())]
    candidates = [root / ".gitmodules.lock"]
    for directory in git_dirs:
        candidates += [directory / name for name in _GIT_LOCKS]
        if (directory / "refs").is_dir():
            candidates += sorted((directory / "refs").rglob("*.lock"))
    removed: list[str] = []
    for lock_file in candidates:
        try:
            if lock_file.is_file() and lock_file.stat().st_mtime >= since - 2:
                lock_file.unlink()
                removed.append(lock_file.relative_to(root).as_posix())
        except OSError:
            continue
    return removed


def _recover(root: Path, repo: git.Repo, stale: tuple[str, float] | None) -> list[str]:
    notes: list[str] = []
    leftovers = remove_stale_temporaries(root)
    remove_temporaries(Path(repo.git_dir) / PID_NAME)
    if stale is not None:
        pid, started = stale
        removed = _remove_stale_git_locks(root, repo, started)
        notes.append(
            f"the previous sync (pid {pid}) did not finish (killed?); the manifest it left is the last complete one"
            + (f"; removed its git lock files {', '.join(removed)}" if removed else "")
            + (f"; removed {len(leftovers)} unfinished temporary file(s)" if leftovers else "")
        )
    elif leftovers:
        notes.append(f"removed {len(leftovers)} unfinished temporary file(s) in manifests/")
    return notes


def _pin(repo: git.Repo, path: str) -> str | None:
    """The gitlink a refused source keeps (shown as ``old→old`` in the summary: nothing moved)."""
    try:
        return gitlink(repo, path)
    except git.GitCommandError:
        return None


def _previous_manifest(root: Path, notes: list[str]) -> pd.DataFrame | None:
    """The current manifest, or None if there is none or it is unreadable (kept aside, not lost)."""
    if not record_path(root / MANIFEST_FILE).is_file() and (root / MANIFEST_FILE).is_file():
        notes.append(
            f"{MANIFEST_FILE} had no integrity record: used it as the previous manifest after the checks its "
            "text allows, and recorded the manifest written now"
        )
    try:
        return read_manifest(root, missing_record_ok=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        aside = (root / MANIFEST_FILE).with_name(f"manifest.unreadable-{time.strftime('%Y%m%dT%H%M%S')}.csv")
        shutil.copy2(root / MANIFEST_FILE, aside)
        notes.append(
            f"{MANIFEST_FILE} was unreadable ({type(err).__name__}: {str(err)[:200]}); kept it as "
            f"{aside.relative_to(root).as_posix()} and rebuilt the manifest from the checkouts"
        )
        return None


def _git_identity(env: dict[str, str], repo: git.Repo) -> dict[str, str]:
    try:
        repo.git.config("user.email")
        return env
    except git.GitCommandError:
        return {
            **env,
            "GIT_AUTHOR_NAME": env.get("GIT_AUTHOR_NAME", "covid19-images sync"),
            "GIT_AUTHOR_EMAIL": env.get("GIT_AUTHOR_EMAIL", "sync@covid19-images.invalid"),
            "GIT_COMMITTER_NAME": env.get("GIT_COMMITTER_NAME", "covid19-images sync"),
            "GIT_COMMITTER_EMAIL": env.get("GIT_COMMITTER_EMAIL", "sync@covid19-images.invalid"),
        }


def sync(
    root: Path,
    sources: Sequence[str] = (),
    *,
    offline: bool = False,
    allow_rewrite: bool = False,
    commit: bool = False,
    mirror: Path | None = None,
    allow_local: bool = False,
    wait: bool = False,
    progress: bool = True,
    allow_shrink: bool = False,
    rebuild: bool = False,
) -> SyncReport:
    """Update the selected sources (all by default) and rebuild the manifest under ``root``.

    Args:
        root: the project root (a git repository holding ``sources.yaml``).
        sources: registry names to update; empty means all. The manifest is always rebuilt
            for every source.
        offline: do not fetch; rebuild from the current checkouts.
        allow_rewrite: accept an upstream whose history no longer holds the pinned commit.
        commit: commit the moved gitlinks, ``.gitmodules`` and the manifest files.
        mirror: a local mirror root (``<owner>/<repo>.git``) that ``https://github.com/`` is rewritten to.
        allow_local: allow local-path remotes (the user's own ``insteadOf`` rules).
        wait: wait for a running sync on the same root instead of raising :class:`SyncBusy`.
        progress: show progress bars.
        allow_shrink: accept a source losing most of its rows (metadata deleted or unreadable upstream).
        rebuild: re-read and re-probe every source and search all duplicates again, ignoring every cache
            (only what changed is re-read otherwise; see :mod:`covid19_images.manifest.build`).

    Raises:
        UnknownSourceError: a name in ``sources`` is not in the registry.
        SyncBusy: another sync holds the root's lock and ``wait`` is false.
        InvalidSetting: a ``COVID19_IMAGES_MAX_*`` budget variable is not a positive whole number.
    """
    root = Path(root).resolve()
    budget_settings()  # InvalidSetting before anything is read: a bad value would drop whole sources
    registry = load_registry(root)
    unknown = [s for s in sources if s not in registry]
    if unknown:
        raise UnknownSourceError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(registry)}")
    selected = [registry[s] for s in (sources or registry)]
    env = git_environment(allow_local=allow_local, mirror=mirror)
    report = SyncReport()
    lock, stale = _acquire(root, wait)
    try:
        repo = open_repo(root, env)
        report.notes += _recover(root, repo, stale)
        keep: set[str] = set()
        if not offline:
            refusals = check_gitmodules(repo, registry)
            for name, reason in refusals:
                report.updates.append(SourceUpdate(name, None, None, "refused", reason))
            refused_names = {name for name, _ in refusals}
            for spec in selected:
                if spec.is_portal:
                    continue  # pinned by its lock, not by a gitlink: see _portal_updates
                if spec.name in refused_names:
                    keep.add(spec.name)
                    continue
                try:
                    update = update_source(repo, spec, env, allow_rewrite=allow_rewrite)
                    report.updates.append(update)
                    report.notes += update.notes
                except SourceSyncError as err:
                    pinned = _pin(repo, spec.path)
                    report.updates.append(SourceUpdate(spec.name, pinned, pinned, "refused", str(err)))
                    if err.keep_manifest_rows:
                        keep.add(spec.name)
                except git.GitCommandError as err:
                    pinned = _pin(repo, spec.path)
                    report.updates.append(SourceUpdate(spec.name, pinned, pinned, "failed", str(err).strip()))
                    keep.add(spec.name)
                checkpoint("sync.source-done")
        previous = _previous_manifest(root, report.notes)
        _portal_updates(report, root, [s for s in selected if s.is_portal], previous, offline)
        cache_dir = cache_dir_of(root)
        report.build = build_manifest(
            root, registry, previous, progress=progress, keep=keep, cache_dir=cache_dir, rebuild=rebuild
        )
        shrinks = [] if allow_shrink else find_shrinks(previous, report.build, keep)
        if shrinks:
            _refuse_shrinks(root, registry, report, previous, shrinks, keep)
            report.build = build_manifest(
                root, registry, previous, progress=progress, keep=keep, cache_dir=cache_dir, rebuild=rebuild
            )
        checkpoint("sync.built")
        if not report.build.unchanged:
            report.changes = diff_manifests(previous, report.build.manifest)
            report.split_moves = explain_split_moves(previous, report.build.manifest)
        write_manifest(root, report.build, cache_dir)
        write_sync_record(root, report)
        checkpoint("sync.written")
        if commit:
            report.committed = _commit(repo, root, env, report, selected)
            checkpoint("sync.committed")
    finally:
        checkpoint("sync.unlocking")
        _lock_paths(root)[1].unlink(missing_ok=True)
        lock.release()
    return report


def _portal_updates(report: SyncReport, root: Path, specs: list, previous: pd.DataFrame | None, offline: bool) -> None:
    """A portal source's "commit" is its lock's digest: old (the manifest's) -> new (the lock on disk).

    Sync itself never downloads (``fetch`` and ``sync --update-portal`` do); it reports what
    the lock says and, in a note, what to run when the content is not here (not pinned, not fetched, damaged).
    """
    for spec in specs:
        rows = previous[previous["source"] == spec.name] if previous is not None else None
        commits = sorted({c for c in rows["source_commit"] if c}) if rows is not None else []
        old = commits[0] if commits else None
        fetched = presence(root, spec.name)
        new = fetched.digest or None
        if offline and old == new:
            continue
        status = "added" if old is None and new else "updated" if old != new else "unchanged"
        report.updates.append(SourceUpdate(spec.name, old, new, status, fetched.hint(spec.name)))
        report.notes += [f"{spec.name}: {fetched.hint(spec.name)}"] if not fetched.complete else []


def _refuse_shrinks(root, registry, report: SyncReport, previous, shrinks: list[Shrink], keep: set[str]) -> None:
    """Mark each shrinking source refused, put its checkout back, and keep its rows (see ``sync.shrink``)."""
    updates = {u.name: u for u in report.updates}
    for item in shrinks:
        update = updates.get(item.source)
        note = restore_checkout(root, registry[item.source], update, previous)
        if note:
            report.notes.append(note)
        keep.add(item.source)
        if update is None:
            update = SourceUpdate(item.source, None, None, "refused")
            report.updates.append(update)
        update.status, update.message = "refused", item.message()
        update.new = update.old


def _commit(repo: git.Repo, root: Path, env: dict[str, str], report: SyncReport, selected: list) -> str | None:
    """Commit what this sync built, the registry, and the pins (gitlinks, locks) of every selected source not
    refused or failed: also those ``--offline`` did not touch (a new root's, as ``make demo``'s)."""
    # a .gitmodules that sync refused must not be laundered into a commit
    tampered = any(u.status == "refused" and u.message.startswith(".gitmodules") for u in report.updates)
    record = record_path(Path(MANIFEST_FILE)).as_posix()
    annotations_record = record_path(Path(ANNOTATIONS_FILE)).as_posix()
    # the reviewed duplicate pairs the groups were built with belong to the same commit
    paths = [MANIFEST_FILE, record, PROBLEMS_FILE, ANNOTATIONS_FILE, annotations_record, SYNC_RECORD_FILE, REVIEWS_FILE]
    paths += [] if tampered else [".gitmodules", REGISTRY_FILE]
    held_back = {u.name for u in report.updates if u.status not in ("added", "updated", "unchanged")}
    pinned = [spec for spec in selected if spec.name not in held_back]
    paths += [lock_path(Path("."), spec.name).as_posix() if spec.is_portal else spec.path for spec in pinned]
    paths = [p for p in paths if (root / p).exists()]
    repo.git.add("--", *paths)
    checkpoint("commit.staged")
    if not repo.git.diff("--cached", "--name-only", "--", *paths).strip():
        return None
    message = "sync: update upstream datasets\n\n" + report.summary() + "\n"
    with repo.git.custom_environment(**_git_identity(env, repo)):
        repo.git.commit("--quiet", "-m", message, "--", *paths)
    return repo.head.commit.hexsha
