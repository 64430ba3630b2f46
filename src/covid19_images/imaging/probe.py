"""Facts about one file that the manifest records: hashes, real format, geometry, fingerprints.

Probing decodes the file once (geometry and frame count come from the same pass), so a
corrupt image is caught at sync time (with its source and path) rather than in the middle
of someone's training loop. For a volume the fingerprinted frame is the middle slice, for
a video or animation the first frame (:func:`covid19_images.imaging.decode.decode_file`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covid19_images.imaging.decode import DecodeError, decode_file
from covid19_images.imaging.formats import LFS_MESSAGE, read_head, sniff_format


@dataclass(frozen=True)
class FileFacts:
    """What the builder records about one file: its hashes, real format and geometry (manifest columns)."""

    sha256: str
    format: str
    width: int
    height: int
    frames: int
    pixel_sha256: str
    phash: str


class ProbeError(ValueError):
    """The file cannot be used; the message says why and how to fix it if we know."""


#: Formats that are recognised but hold no image, with what to tell the user.
_NOT_IMAGES = {
    "lfs-pointer": LFS_MESSAGE,
    "zip": "a zip archive, not an image: unpack it (the manifest indexes files, not archive members)",
    "html": "an HTML page, not an image (a failed download or an error page saved under an image name?)",
    "gzip": "a gzip stream that is not a NIfTI volume",
}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes, read ``chunk`` bytes at a time (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprints(pixels: np.ndarray) -> tuple[str, str]:
    """``(pixel_sha256, phash)`` of decoded pixels.

    The pixel hash is taken on the grayscale image so a colour re-save of a gray picture
    still matches. The perceptual hash is 256 bits (16x16 lowest DCT frequencies of a
    z-scored 64x64 thumbnail): 64 bits put different chest X-rays of the sample within
    8 bits of each other, 256 bits keep them 64 or more apart while resized, re-encoded and
    re-windowed copies stay within 24 (docs/dedup-threshold.md).
    """
    from covid19_images.imaging.fingerprints import perceptual_hash, pixel_digest, to_gray

    gray = to_gray(pixels)
    return pixel_digest(gray), perceptual_hash(gray)


def probe_file(path: Path) -> FileFacts:
    """Hash, sniff, measure and decode one file (the representative frame of a stack).

    Raises:
        ProbeError: the file cannot be used (unreadable, empty, not an image, undecodable);
            the message says what it is and, where known, how to fix it.
    """
    path = Path(path)
    try:
        head = read_head(path)
    except OSError as err:
        raise ProbeError(f"cannot read file: {err}") from err
    if not head:
        raise ProbeError("file is empty (0 bytes)")
    fmt = sniff_format(head)
    if fmt in _NOT_IMAGES:
        raise ProbeError(f"file is {_NOT_IMAGES[fmt]}" if fmt != "lfs-pointer" else _NOT_IMAGES[fmt])
    if fmt == "unknown":
        raise ProbeError(f"not a recognised image format (first bytes {head[:8]!r})")
    try:
        decoded = decode_file(path, frame=None, fmt=fmt, count_frames=True)
    except DecodeError as err:
        raise ProbeError(str(err)) from err
    except Exception as err:
        raise ProbeError(f"cannot decode {fmt}: {type(err).__name__}: {err}") from err
    pixel_sha, phash = fingerprints(decoded.pixels)
    try:
        digest = sha256_file(path)
    except OSError as err:
        raise ProbeError(f"cannot read file: {err}") from err
    return FileFacts(digest, fmt, decoded.width, decoded.height, decoded.frames, pixel_sha, phash)
