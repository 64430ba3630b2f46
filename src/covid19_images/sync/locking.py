"""The root's sync lock, and cleaning up after a sync that was killed while holding it."""

from __future__ import annotations

import os
from pathlib import Path

import filelock
import git

from covid19_images.core.atomic import remove_temporaries, write_atomic
from covid19_images.core.failpoints import checkpoint
from covid19_images.manifest.io import remove_stale_temporaries

LOCK_NAME = "covid19-images-sync.lock"  # kept in the root's git dir: never shows up as an untracked file
PID_NAME = "covid19-images-sync.pid"


class SyncBusy(RuntimeError):
    """Another sync holds the lock on this root."""


def lock_paths(root: Path) -> tuple[Path, Path]:
    git_dir = Path(git.Repo(root).git_dir)
    return git_dir / LOCK_NAME, git_dir / PID_NAME


def _write_pid(pid_path: Path) -> None:
    write_atomic(pid_path, str(os.getpid()).encode("ascii"))


def acquire(root: Path, wait: bool) -> tuple[filelock.BaseFileLock, tuple[str, float] | None]:
    """Take the root's sync lock; also return ``(pid, start time)`` of a sync that died holding it.

    The lock is an OS lock (``flock``), released by the kernel when its holder dies, so a
    killed sync never blocks the next one. The pid file is only for the message; a pid
    file found once we hold the lock was left by a sync that did not finish.
    """
    lock_path, pid_path = lock_paths(root)
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


def recover(root: Path, repo: git.Repo, stale: tuple[str, float] | None) -> list[str]:
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
