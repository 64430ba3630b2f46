"""Safe extraction of a downloaded archive into a staging folder.

An archive from a portal is data, not instructions: no member may leave its folder (absolute
names, ``..``, backslashes, drive letters), none may be a link, device or FIFO, names may not
repeat, and the total it unpacks to is bounded (a multiple of the archive's own size and the
free disk space) before a byte is written: a zip bomb is refused by its declared sizes, and a
member that writes more than it declared is cut off at once. Only regular files and folders
are created, each with ``O_EXCL`` (never through an existing path). A failure leaves the
staging folder to the caller, who removes it whole.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from covid19_images.core.failpoints import checkpoint
from covid19_images.core.paths import lexical_problem

#: the largest unpacked/archive size ratio accepted (images compress 1-3x; 100x is a bomb)
MAX_RATIO = 100
#: unpacked totals below this are never refused for their ratio (tiny archives of text)
RATIO_FLOOR = 16 << 20
MAX_MEMBERS = 2_000_000
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_BLOCK = 1 << 20


class UnsafeArchive(ValueError):
    """An archive refused before or while extracting; the message names the archive and member."""


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _member_path(archive: str, name: str) -> str:
    clean = name.rstrip("/")
    problem = lexical_problem(clean) if clean else "empty member name"
    if problem or "\\" in name:
        raise UnsafeArchive(f"{archive}: member {name!r} refused: {problem or 'backslash in a member name'}")
    return PurePosixPath(clean).as_posix()


def _budget(archive: Path, declared: int, target: Path) -> None:
    limit = max(MAX_RATIO * archive.stat().st_size, RATIO_FLOOR)
    if declared > limit:
        raise UnsafeArchive(
            f"{archive.name}: declares {declared} unpacked bytes, more than {MAX_RATIO}x its own size "
            f"({archive.stat().st_size}); refused as a possible zip bomb"
        )
    free = shutil.disk_usage(target).free
    if declared > free:
        raise UnsafeArchive(f"{archive.name}: needs {declared} bytes to unpack, only {free} free under {target}")


def _write(stream, target: Path, limit: int, archive: str, name: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    written = 0
    with os.fdopen(os.open(target, flags, 0o644), "wb") as out:
        while block := stream.read(_BLOCK):
            written += len(block)
            if written > limit:
                raise UnsafeArchive(f"{archive}: member {name!r} unpacks to more than the {limit} bytes it declares")
            out.write(block)
            checkpoint("extract.block")


def _zip_is_link(info: zipfile.ZipInfo) -> bool:
    kind = stat.S_IFMT(info.external_attr >> 16)
    return info.create_system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def extract_zip(archive: Path, target: Path) -> list[str]:
    """Extract a zip into ``target``; return the files written (relative to ``target``)."""
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise UnsafeArchive(f"{archive.name}: {len(infos)} members, more than {MAX_MEMBERS}")
        names: set[str] = set()
        for info in infos:
            name = _member_path(archive.name, info.filename)
            if _zip_is_link(info):
                raise UnsafeArchive(f"{archive.name}: member {info.filename!r} is a link or special file; refused")
            if name in names:
                raise UnsafeArchive(f"{archive.name}: member {name!r} appears twice; refused")
            names.add(name)
        _budget(archive, sum(i.file_size for i in infos), target)
        files: list[str] = []
        for info in infos:
            name = _member_path(archive.name, info.filename)
            if info.is_dir():
                (target / name).mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as stream:
                _write(stream, target / name, info.file_size, archive.name, name)
            files.append(name)
    return files


def extract_tar(archive: Path, target: Path) -> list[str]:
    """Extract a (compressed) tar into ``target`` in one streaming pass; return the files written."""
    declared = 0
    files: list[str] = []
    names: set[str] = set()
    limit = max(MAX_RATIO * archive.stat().st_size, RATIO_FLOOR)
    with tarfile.open(archive, mode="r|*") as tf:
        for count, member in enumerate(tf, start=1):
            name = _member_path(archive.name, member.name)
            if not (member.isreg() or member.isdir()):
                raise UnsafeArchive(f"{archive.name}: member {member.name!r} is a link or special file; refused")
            if name in names or count > MAX_MEMBERS:
                raise UnsafeArchive(f"{archive.name}: member {name!r} repeated, or too many members; refused")
            names.add(name)
            declared += member.size
            if declared > limit:
                _budget(archive, declared, target)  # raises with the ratio message
            if member.isdir():
                (target / name).mkdir(parents=True, exist_ok=True)
                continue
            stream = tf.extractfile(member)
            assert stream is not None  # a regular member always has one
            _write(stream, target / name, member.size, archive.name, name)
            files.append(name)
    return files


def extract(archive: Path, target: Path) -> list[str]:
    """Extract ``archive`` (zip or tar, by content) into ``target``; refuse anything unsafe."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            return extract_zip(archive, target)
        if tarfile.is_tarfile(archive):
            return extract_tar(archive, target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as err:
        raise UnsafeArchive(f"{archive.name}: damaged archive: {err}") from err
    raise UnsafeArchive(f"{archive.name}: neither a zip nor a tar archive")


def place_file(source: Path, target: Path) -> None:
    """Put a downloaded plain file at ``target`` (a hard link when possible: downloads are never changed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
