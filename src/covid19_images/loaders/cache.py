"""On-disk cache of decoded, resized uint8 pixels: one ``.npy`` array per selection.

Design (why it is filled up front rather than lazily by the workers):

* The first epoch has to decode every image anyway. Doing it at construction, on a thread
  pool that uses every core (Pillow releases the GIL while decoding and resizing), costs
  about what a first epoch with that many DataLoader workers costs.
* The array is written under a temporary name, flushed, fsynced and renamed into place
  (plus an fsync of the folder), so the final name only ever holds a complete array. An
  interrupted fill leaves a ``.tmp`` file that is never read and is removed by the next
  fill of the same key. A file that is damaged later (truncated copy, full disk) is caught
  by a size check on open and rebuilt.
* Readers (DataLoader workers, ``tf.data``) only ever *read* a finished file, so there is
  no cross-process write coordination, no per-item flags to trust, and no lock in the
  hot path; each process opens its own read-only memory map.
* A file lock per key makes two processes asking for the same cache at once fill it once.

The key hashes everything that changes the pixels: each item's content hash (the
manifest ``sha256``) and frame, in serving order; the image size, channel count; and the
reader: the source of ``decode.py`` and the item pipeline, and the Pillow/NumPy versions.
Change an image, a setting or the reader and a new file is used; old files are inert
(delete ``<root>/.cache/covid19-images`` to reclaim space).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from covid19_images.core.atomic import fsync_dir
from covid19_images.loaders._pixels import PIPELINE_VERSION, load_item
from covid19_images.loaders._select import Selection

CACHE_FORMAT = 1


def _reader_fingerprint() -> str:
    """Hash of the code that produces cached pixels: a reader fix invalidates old caches.

    Every module of :mod:`covid19_images.imaging` counts (decoding is spread over
    ``decode``, ``decoded``, ``dicom``, ``formats`` ...), plus the loaders' own pixel step.
    """
    import PIL

    from covid19_images import imaging
    from covid19_images.loaders import _pixels

    digest = hashlib.sha256()
    sources = [*sorted(Path(imaging.__file__).parent.glob("*.py")), Path(_pixels.__file__)]
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    digest.update(f"{PIPELINE_VERSION}|pillow {PIL.__version__}|numpy {np.__version__}".encode())
    return digest.hexdigest()


def _content_id(row_sha: str, path: str) -> str:
    if row_sha:
        return row_sha
    # no hash recorded (should not happen for a built manifest): fall back to file identity
    stat = os.stat(path)
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def cache_key(selection: Selection, size: tuple[int, int], channels: int) -> str:
    """The cache file name for these items and settings (see module docstring)."""
    items = selection.items
    digest = hashlib.sha256()
    header = f"cache {CACHE_FORMAT} reader {_reader_fingerprint()} size {size[0]}x{size[1]} channels {channels}"
    digest.update(f"{header} count {len(items)}".encode())
    for sha, path, frame in items[["sha256", "file", "frame"]].to_numpy().tolist():
        digest.update(f"\n{_content_id(sha, path)}:{int(frame)}".encode())
    return digest.hexdigest()[:40]


@dataclass
class PixelCache:
    """A finished cache file. ``array`` is opened lazily and never pickled, so every
    DataLoader worker maps the file itself instead of receiving a copy of it."""

    path: Path
    shape: tuple[int, int, int, int]
    offset: int
    _array: np.ndarray | None = field(default=None, repr=False)

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    @property
    def record_bytes(self) -> int:
        return int(np.prod(self.shape[1:]))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_array"] = None
        return state


def _open_valid(path: Path, shape: tuple[int, ...]) -> PixelCache | None:
    """The cache at ``path`` if it is complete and has the expected shape, else None."""
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    if array.shape != shape or array.dtype != np.uint8:
        return None
    offset = int(array.offset)
    if path.stat().st_size != offset + array.nbytes:
        return None
    return PixelCache(path=path, shape=shape, offset=offset, _array=array)  # type: ignore[arg-type]


class CacheSpaceError(OSError):
    """The cache folder cannot hold the cache (full, over a quota or file-size limit, read-only)."""


def _reserve(path: Path, offset: int, total: int) -> None:
    """Allocate every block of the cache file before a single pixel is written through the mapping.

    ``open_memmap`` makes a sparse file; storing into a page the file system then cannot
    back kills the process with SIGBUS (no Python error; a Jupyter kernel just dies). With
    the blocks reserved up front a full disk is an ``OSError`` here, before any work.
    """
    with open(path, "rb+") as handle:
        try:
            os.posix_fallocate(handle.fileno(), 0, total)
        except OSError as err:
            if err.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise _space_error(err, path, total) from err
            _write_zeros(handle, offset, total)  # no fallocate on this file system: write the blocks instead


def _space_error(err: OSError, path: Path, total: int) -> CacheSpaceError:
    return CacheSpaceError(
        err.errno,
        f"cannot reserve {total / 1e6:,.1f} MB for the pixel cache in {path.parent} "
        f"({os.strerror(err.errno or 0)}; {_free(path.parent)}): free space, choose cache_dir=..., or use cache=False",
    )


def _write_zeros(handle, offset: int, total: int) -> None:
    block = bytes(1 << 20)
    try:
        handle.seek(offset)
        position = offset
        while position < total:
            position += handle.write(block[: min(len(block), total - position)])
        handle.flush()
    except OSError as err:
        raise CacheSpaceError(
            err.errno, f"cannot write the pixel cache: {err}: choose cache_dir=... or cache=False"
        ) from err


def _free(directory: Path) -> str:
    try:
        return f"{shutil.disk_usage(directory).free / 1e6:,.1f} MB free there"
    except OSError:
        return "free space unknown"


def _fill(tmp: Path, selection: Selection, shape: tuple[int, int, int, int], workers: int, progress: bool) -> None:
    from covid19_images.core.progress import progress_bar
    from covid19_images.imaging.decode import DecodeError

    items = selection.items
    files = items["file"].tolist()
    frames = items["frame"].tolist()
    formats = items["format"].tolist()
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    except OSError as err:  # extending the sparse file already fails over RLIMIT_FSIZE or a quota
        raise _space_error(err, tmp, int(np.prod(shape))) from err
    _reserve(tmp, int(out.offset), int(out.offset) + out.nbytes)
    size, channels = (shape[1], shape[2]), shape[3]

    def work(index: int) -> None:
        try:
            out[index] = load_item(files[index], frames[index], formats[index], size, channels)
        except DecodeError as err:
            row = items.iloc[index]
            raise DecodeError(f"[{row['source']}] {row['path']} (frame {frames[index]}): {err}") from err

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in progress_bar(
            pool.map(work, range(len(files))),
            asked=progress,
            total=len(files),
            desc="filling covid19-images cache",
            unit="img",
            leave=False,
        ):
            pass
    out.flush()  # msync the mapping; the fsync below makes it durable before the rename
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())


def open_cache(
    selection: Selection,
    size: tuple[int, int],
    channels: int,
    directory: Path,
    *,
    workers: int | None = None,
    progress: bool = True,
) -> PixelCache:
    """Return the finished cache for ``selection``, filling it first if needed."""
    import filelock

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK):
            raise PermissionError(errno.EACCES, "not writable")
    except OSError as err:
        raise CacheSpaceError(
            err.errno,
            f"cannot use {directory} for the pixel cache ({err.strerror or err}): choose cache_dir=... "
            "on a writable disk, or use cache=False",
        ) from err
    key = cache_key(selection, size, channels)
    final = directory / f"{key}.npy"
    shape = (len(selection.items), size[0], size[1], channels)
    found = _open_valid(final, shape)
    if found is not None:
        return found
    with filelock.FileLock(str(directory / f"{key}.lock")):
        found = _open_valid(final, shape)  # filled by another process while we waited
        if found is not None:
            return found
        for stale in directory.glob(f".{key}.*.tmp.npy"):  # interrupted fills; we hold the lock
            stale.unlink(missing_ok=True)
        tmp = directory / f".{key}.{os.getpid()}.tmp.npy"
        try:
            from covid19_images.core.workers import default_workers

            _fill(tmp, selection, shape, workers or default_workers(), progress and len(selection.items) > 200)
            meta = {
                "format": CACHE_FORMAT,
                "shape": list(shape),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "classes": list(selection.classes),
                "items": [
                    {"path": p, "frame": int(f), "sha256": s}
                    for p, f, s in zip(
                        selection.items["path"], selection.items["frame"], selection.items["sha256"], strict=True
                    )
                ],
            }
            from covid19_images.manifest.build import write_atomic

            write_atomic(directory / f"{key}.json", json.dumps(meta, indent=0).encode())
            os.replace(tmp, final)
            fsync_dir(directory)
        finally:
            tmp.unlink(missing_ok=True)
    found = _open_valid(final, shape)
    if found is None:  # pragma: no cover - only if the disk lies to us
        raise OSError(f"cache file {final} is not valid right after it was written")
    return found
