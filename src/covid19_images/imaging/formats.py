"""Detect a file's real format from its bytes; the extension is never trusted.

Upstreams mislabel files: WebP saved as ``.png``, DICOM without an extension (and now and
then without the 128-byte preamble), Git LFS pointer text named ``.nii``, ``.MP4`` next to
``.mp4``. Naming the container from its magic bytes is what lets one reader serve them all
and lets a probe error say what the file really is (an HTML error page, a zip to unpack).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from covid19_images.imaging.metaimage import looks_like_metaimage

#: The first bytes of a Git LFS pointer file (a clone made without ``git lfs``).
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
#: Every pointer spelling git-lfs accepts (``hawser`` is the pre-1.0 name).
LFS_POINTER_PREFIXES = (LFS_POINTER_PREFIX, b"version https://hawser.github.com/spec/")


def lfs_pointer_message(folder: str = "its submodule") -> str:
    """What to tell a user about an LFS pointer file: what it is and the command that fixes it.

    Args:
        folder: where to run ``git lfs pull`` (a source's ``datasets/<name>`` when known).
    """
    return f"Git LFS pointer, not the data: run `git lfs install && git lfs pull` in {folder}"


#: The decoder's and the probe's message for a pointer file.
LFS_MESSAGE = f"file is a {lfs_pointer_message()}"

#: formats the decoder can turn into pixels, by the kind of image they hold.
IMAGE_FORMATS = ("jpeg", "png", "webp", "gif", "bmp", "tiff", "jpeg2000")
VOLUME_FORMATS = ("dicom", "nifti", "metaimage")
VIDEO_FORMATS = ("mp4", "mov", "avi", "mpeg", "webm")
#: every value the manifest's ``format`` column can hold (documented in manifests/README.md).
DECODABLE_FORMATS = (*IMAGE_FORMATS, *VOLUME_FORMATS, *VIDEO_FORMATS)

#: How many bytes :func:`read_head` returns (enough for every check below).
HEAD_SIZE = 512

_NIFTI1_MAGICS = (b"n+1\x00", b"ni1\x00")
_NIFTI2_MAGICS = (b"n+2\x00\r\n\x1a\n", b"ni2\x00\r\n\x1a\n")
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_DICOM_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)


def is_lfs_pointer(head: bytes) -> bool:
    """True for the text file git leaves in place of an LFS object when git-lfs is missing."""
    return head.startswith(LFS_POINTER_PREFIXES)


def sniff_format(head: bytes) -> str:
    """Name the container format from the first bytes (see :data:`HEAD_SIZE`); ``unknown`` if nothing matches.

    Besides the decodable formats it names ``lfs-pointer``, ``zip``, ``html`` and ``gzip``
    (a gzip stream that is not a NIfTI), so callers can explain what to do about them.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM" and len(head) >= 18 and struct.unpack("<I", head[14:18])[0] in (12, 40, 52, 56, 64, 108, 124):
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "jpeg2000"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if is_lfs_pointer(head):
        return "lfs-pointer"
    if _is_nifti(head):
        return "nifti"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS and struct.unpack(">I", head[:4])[0] >= 8:
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    if len(head) >= 377 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return "mpeg"  # MPEG transport stream: a sync byte every 188 bytes
    if head[:2] == b"\x1f\x8b":
        return "nifti" if _is_nifti(_gunzip_head(head)) else "gzip"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if _is_dicom_without_preamble(head):
        return "dicom"
    if looks_like_metaimage(head):
        return "metaimage"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "html"
    return "unknown"


def _is_nifti(head: bytes) -> bool:
    if len(head) >= 348 and head[344:348] in _NIFTI1_MAGICS:
        return struct.unpack("<i", head[:4])[0] == 348 or struct.unpack(">i", head[:4])[0] == 348
    if len(head) >= 12 and head[4:12] in _NIFTI2_MAGICS:
        return struct.unpack("<i", head[:4])[0] == 540 or struct.unpack(">i", head[:4])[0] == 540
    return False


def _is_dicom_without_preamble(head: bytes) -> bool:
    """A bare DICOM data set (no 128-byte preamble, no ``DICM``), as some old exporters write.

    Accepts a first element in group 0x0002 or 0x0008 with either an explicit VR or a
    plausible implicit-VR length, which text and the image formats above never have.
    """
    if len(head) < 8:
        return False
    group, element = struct.unpack("<HH", head[:4])
    if group not in (0x0002, 0x0008) or element > 0x0020:
        return False
    if head[4:6] in _DICOM_VRS:
        return True
    return struct.unpack("<I", head[4:8])[0] <= 256


def _gunzip_head(head: bytes) -> bytes:
    """Decompress what a partial gzip stream allows (a truncated stream is the normal case here)."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 1024)
    except zlib.error:
        return b""


def read_head(path: Path, size: int = HEAD_SIZE) -> bytes:
    """The first ``size`` bytes, or the first 4 KiB of a gzip stream (enough to see a NIfTI header)."""
    with open(path, "rb") as handle:
        head = handle.read(size)
        if head[:2] == b"\x1f\x8b":
            head += handle.read(max(0, 4096 - len(head)))
    return head
