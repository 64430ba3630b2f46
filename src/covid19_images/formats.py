"""Detect an image's real format from its bytes, and read its geometry cheaply.

Upstreams mislabel files (WebP named ``.png``, extension-less DICOM, Git LFS pointer
text named ``.nii``), so the extension is never trusted.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"

#: formats the decoder can turn into pixels, by the kind of image they hold.
IMAGE_FORMATS = ("jpeg", "png", "webp", "gif", "bmp", "tiff")
VOLUME_FORMATS = ("dicom", "nifti")
VIDEO_FORMATS = ("mp4", "mov", "avi", "mpeg", "webm")


def sniff_format(head: bytes) -> str:
    """Name the container format from the first 512 bytes; ``unknown`` if nothing matches."""
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
    if head[:2] == b"BM":
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(LFS_POINTER_PREFIX):
        return "lfs-pointer"
    if len(head) >= 348 and head[344:348] in (b"n+1\x00", b"ni1\x00") and struct.unpack("<i", head[:4])[0] == 348:
        return "nifti"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        return "mov" if brand == b"qt  " else "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    if head[:2] == b"\x1f\x8b":
        try:
            inner = gzip.decompress(head + b"")[:348]
        except (OSError, EOFError):
            inner = _gunzip_head(head)
        if len(inner) >= 348 and inner[344:348] in (b"n+1\x00", b"ni1\x00"):
            return "nifti"
        return "gzip"
    return "unknown"


def _gunzip_head(head: bytes) -> bytes:
    import zlib

    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
    except zlib.error:
        return b""


def read_head(path: Path, size: int = 512) -> bytes:
    with open(path, "rb") as handle:
        head = handle.read(size)
    if head[:2] == b"\x1f\x8b":  # a gzip stream: look at enough compressed bytes to see the NIfTI header
        with open(path, "rb") as handle:
            head = handle.read(4096)
    return head
