"""Atomic file replacement: readers see the old file or the new one, never half of either.

Sync runs unattended and can be killed at any instant, so everything it writes for a later
run to read (the manifest, problems.csv, its pid file, the note announcing a submodule
move) goes through :func:`write_atomic`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from covid19_images.core.failpoints import checkpoint


def write_atomic(path: Path, data: bytes, *, fault_points: str = "") -> None:
    """Write-then-rename in the same folder, fsyncing the data before and the folder after.

    Even a power cut leaves one complete version. A process killed mid-write leaves only a
    ``.<name>.*.tmp`` file next to ``path``, which :func:`remove_temporaries` deletes.

    Args:
        path: the file to replace (its folder is created if needed).
        data: the complete new content.
        fault_points: prefix of the :func:`~covid19_images.core.failpoints.checkpoint` names
            reached on the way (``<prefix>.tmp-written``, ``.fsynced``, ``.replaced``) so the
            crash tests can kill the writer there; ``""`` reaches none.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            if fault_points:
                checkpoint(f"{fault_points}.tmp-written")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600: shared roots need the user's umask
        if fault_points:
            checkpoint(f"{fault_points}.fsynced")
        os.replace(tmp, path)
        if fault_points:
            checkpoint(f"{fault_points}.replaced")
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask, read from /proc without changing it (``os.umask`` would race with threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_temporaries(path: Path) -> list[Path]:
    """Delete the temporaries unfinished :func:`write_atomic` calls for ``path`` left; return them.

    Only call it while holding the lock that serialises writers of ``path``: a running
    writer's temporary looks the same.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed: list[Path] = []
    for leftover in sorted(path.parent.glob(f".{path.name}.*.tmp")):
        leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new name in ``folder`` durable (the folder's own entry list)."""
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def sync_filesystem_of(path: Path) -> None:
    """Write back every dirty page of the file system holding ``path`` and wait for it.

    One ``syncfs(2)`` makes a whole tree of new files durable (a fetch's thousands of extracted
    images) for the price of its data, where an fsync per file would pay a disk flush each.
    Where libc has no ``syncfs`` (not Linux), ``sync(2)`` does the same for every file system.
    """
    import ctypes
    import ctypes.util

    try:
        syncfs = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).syncfs
    except (OSError, AttributeError):
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}", str(path))
    finally:
        os.close(fd)
