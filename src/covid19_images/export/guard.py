"""The safety of an export's destination: where it may go, who may write it, how it is replaced.

An export is the one command that deletes a folder the user names, so it is fenced on
every side:

* ``--out`` never is, contains or lies inside the data root's own folders (``.git``,
  ``datasets/`` and every checkout however it is reached, ``manifests/``);
  :func:`check_destination` resolves links before comparing.
* ``--overwrite`` replaces an empty folder or a previous export (a folder with
  ``export.json``), never an arbitrary non-empty folder.
* The export is built in a hidden sibling folder, verified (:func:`verify_export`: every
  file ``export.json`` declares is there and holds its count), and only then swapped in
  (:func:`swap_in`); any failure deletes the sibling and leaves the old export untouched.
* While it runs it holds the output folder's lock (a second export into the same folder is
  refused) and a *shared* lock on the root's sync lock file (:func:`root_reading`): a sync
  cannot rewrite the manifest or the checkouts under it, exports of one root still run side
  by side.
* A full disk ends in :class:`ExportError` naming the output, with nothing left behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import filelock

from covid19_images.export.common import INDEX_FILE, MANIFEST_NAME

#: errors that mean "the output's file system is full", whatever library raised them
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_FULL_TEXT = ("No space left on device", "Disk quota exceeded", "File too large")


class ExportError(RuntimeError):
    """An export refused or failed for a reason the user can act on; nothing was changed."""


class ExportBusy(ExportError):
    """Another export writes the same folder, or a sync is rewriting the root."""


def check_destination(out: Path, root: Path) -> None:
    """Refuse an ``out`` that is, contains or lies inside the root's data (links resolved)."""
    out, root = Path(out).resolve(), Path(root).resolve()
    if out == root:
        raise ExportError(f"--out {out} is the data root itself: choose a folder outside it (e.g. {root}/build/export)")
    if root.is_relative_to(out):
        raise ExportError(f"--out {out} contains the data root {root}: choose a folder that does not hold it")
    for protected in _protected(root):
        if out == protected or out.is_relative_to(protected) or protected.is_relative_to(out):
            raise ExportError(
                f"--out {out} overlaps {protected}, which belongs to the data root {root} "
                "(its git folder, a source checkout or the manifests): choose a folder outside them"
            )


def _protected(root: Path) -> list[Path]:
    """The root's own folders, each resolved (a checkout may be a link to another disk)."""
    folders = [root / ".git", root / "datasets", root / "manifests"]
    datasets = root / "datasets"
    if datasets.is_dir():
        folders += [entry for entry in datasets.iterdir() if entry.is_dir()]
    git_file = root / ".git"
    if git_file.is_file():  # a worktree or submodule: ".git" names the real git folder
        text = os.fsdecode(git_file.read_bytes()).strip()  # a path, in the file system's encoding
        if text.startswith("gitdir:"):
            folders.append(root / text[len("gitdir:") :].strip())
    return sorted({folder.resolve() for folder in folders})


def check_replaceable(out: Path, overwrite: bool) -> None:
    """``out`` may be replaced: absent, empty, or (with ``overwrite``) a previous export."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f"{out} is not empty: choose a new folder or pass overwrite=True (--overwrite)")
    if not (out / INDEX_FILE).is_file():
        raise ExportError(
            f"{out} is not empty and is not a covid19-images export (no {INDEX_FILE}): "
            "--overwrite only replaces a previous export; choose a new folder"
        )


def _lock_file(root: Path) -> Path | None:
    """The root's sync lock file (in its git folder), or None for a root without git (no sync can run)."""
    import git

    from covid19_images.sync.run import LOCK_NAME

    try:
        return Path(git.Repo(root).git_dir) / LOCK_NAME
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None


@contextlib.contextmanager
def root_reading(root: Path, *, wait: bool = False) -> Iterator[None]:
    """Hold a shared lock on the root's sync lock file while the export reads the root.

    Sync takes the same file exclusively (``filelock``'s ``flock``), so it cannot start while
    an export reads, and an export cannot start while a sync writes; exports share it.
    ``filelock`` has no shared mode on a plain lock file, hence ``fcntl.flock`` here.
    """
    path = _lock_file(root)
    if path is None:
        yield
        return
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ExportBusy(
                f"a sync is running on {root}: the manifest and checkouts are being rewritten; "
                "export when it has finished (or pass wait=True / --wait)"
            ) from None
        yield
    finally:
        os.close(handle)  # closing the descriptor releases the lock


@contextlib.contextmanager
def destination_lock(out: Path) -> Iterator[None]:
    """The output folder's lock (a hidden file beside it): one export writes a folder at a time."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(out.parent / f".{out.name}.export.lock"), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise ExportBusy(f"another export is writing {out}: wait for it to finish, or choose another folder") from None
    try:
        _recover(out)
        yield
    finally:
        lock.release()


def _leftovers(out: Path, kind: str) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.export-*.{kind}"))


def _recover(out: Path) -> None:
    """Under the folder's lock: restore an export a killed swap had moved aside, drop unfinished builds."""
    old = _leftovers(out, "old")
    if old and not out.exists():
        os.replace(old.pop(), out)
    for leftover in old + _leftovers(out, "tmp"):
        shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh hidden sibling of ``out`` to build in (same file system, so the swap is a rename);
    deleted if the build does not complete."""
    folder = out.parent / f".{out.name}.export-{secrets.token_hex(4)}.tmp"
    folder.mkdir()
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def swap_in(built: Path, out: Path) -> None:
    """Replace ``out`` by the verified ``built`` folder: rename the old one aside, rename the new
    one in, then delete the old one (a crash in between is repaired by the next export's lock)."""
    if out.is_dir() and any(out.iterdir()):
        aside = out.parent / f"{built.name[: -len('.tmp')]}.old"
        os.replace(out, aside)
        try:
            os.replace(built, out)
        except BaseException:
            os.replace(aside, out)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(built, out)  # rename(2) replaces an empty folder


def is_disk_full(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) says the file system is full, whoever raised it."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return True
        if any(text in str(seen) for text in _FULL_TEXT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full(out: Path, error: BaseException) -> ExportError:
    return ExportError(
        f"the file system holding {out} is full ({error}); nothing was written to {out} "
        "and the partial export was removed: free space there or choose another --out"
    )


def clone_file(source: str, target: Path) -> None:
    """Copy ``source`` to ``target`` as a reflink where the file system can (shared blocks,
    copy-on-write: no extra space), else as a plain copy. Never a hard link: editing an
    exported file must not edit the data under ``datasets/``."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), 0x40049409, src.fileno())  # FICLONE
            return
        except OSError:
            pass
        shutil.copyfileobj(src, dst, 1 << 20)


def _tar_samples(path: Path) -> int:
    import tarfile

    with tarfile.open(path) as tar:
        return len({member.name.split(".", 1)[0] for member in tar.getmembers() if member.isfile()})


def _tfrecord_records(path: Path) -> int:
    """Records of a TFRecord file, counted from its framing (length, crc, data, crc); a cut record raises."""
    count, size = 0, path.stat().st_size
    with open(path, "rb") as handle:
        while handle.tell() < size:
            header = handle.read(12)
            if len(header) < 12:
                raise ValueError(f"{path.name}: cut inside a record header")
            length = int.from_bytes(header[:8], "little")
            if handle.seek(length + 4, os.SEEK_CUR) > size:
                raise ValueError(f"{path.name}: record {count} is cut")
            count += 1
    return count


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


COUNTERS = {".tar": _tar_samples, ".tfrecord": _tfrecord_records, ".parquet": _parquet_rows}


def verify_export(directory: Path) -> None:
    """Check a built export before it is swapped in: ``export.json`` reads, every shard it lists is
    there with the count it declares, ``manifest.csv`` lists as many rows (and, for ImageFolder,
    every file it names exists). Raises :class:`ExportError` naming the first thing missing."""
    import pandas as pd

    index = json.loads((directory / INDEX_FILE).read_bytes())
    rows = pd.read_csv(directory / MANIFEST_NAME, dtype=str, keep_default_na=False)
    declared = sum(int(n) for n in index["counts"].values())  # written by this export (common.write_index)
    if declared != len(rows):
        raise ExportError(f"{directory}: {INDEX_FILE} counts {declared} items but {MANIFEST_NAME} lists {len(rows)}")
    for split, shards in index["shards"].items():
        for shard in shards:
            path = directory / shard["file"]
            counter = COUNTERS.get(path.suffix)
            found = counter(path) if path.is_file() and counter else None
            if found != int(shard["count"]):
                raise ExportError(
                    f"{directory}: shard {shard['file']} of {split} holds {found} items, "
                    f"{INDEX_FILE} declares {shard['count']}"
                )
    if not index["shards"]:
        missing = [p for p in rows["export_path"] if not (directory / p).is_file()]
        if missing:
            raise ExportError(f"{directory}: {len(missing)} exported files missing, e.g. {missing[0]}")
