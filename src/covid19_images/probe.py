"""Facts about one file that the manifest records: hashes, real format, geometry, fingerprints.

Probing decodes the file once, so a corrupt image is caught at sync time (with its
source and path) rather than in the middle of someone's training loop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .decode import DecodeError, read_pixels
from .formats import IMAGE_FORMATS, VIDEO_FORMATS, read_head, sniff_format


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    format: str
    width: int
    height: int
    frames: int
    pixel_sha256: str
    phash: str


class ProbeError(ValueError):
    """The file cannot be used; the message says why and how to fix it if we know."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprints(pixels: np.ndarray) -> tuple[str, str]:
    """``(pixel_sha256, phash)`` of decoded pixels.

    The pixel hash is taken on the grayscale image so a colour re-save of a gray picture
    still matches; the perceptual hash (64-bit DCT hash of a 32x32 thumbnail) survives
    resizing and re-encoding.
    """
    import imagehash
    from PIL import Image

    gray = pixels if pixels.ndim == 2 else np.asarray(Image.fromarray(pixels).convert("L"))
    digest = hashlib.sha256(f"{gray.shape[0]}x{gray.shape[1]}:".encode() + gray.tobytes()).hexdigest()
    return digest, str(imagehash.phash(Image.fromarray(gray)))


def _geometry(path: Path, fmt: str) -> tuple[int, int, int]:
    if fmt in IMAGE_FORMATS:
        from PIL import Image

        with Image.open(path) as image:
            return image.width, image.height, int(getattr(image, "n_frames", 1) or 1)
    if fmt == "dicom":
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return int(ds.get("Columns", 0) or 0), int(ds.get("Rows", 0) or 0), int(ds.get("NumberOfFrames", 1) or 1)
    if fmt == "nifti":
        import nibabel

        shape = nibabel.load(str(path)).shape
        return int(shape[1]), int(shape[0]), int(shape[2]) if len(shape) > 2 else 1
    if fmt in VIDEO_FORMATS:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = stream.frames or sum(1 for _ in container.decode(video=0))
            return stream.codec_context.width, stream.codec_context.height, int(frames)
    raise ProbeError(f"unsupported format {fmt}")


def probe_file(path: Path) -> FileFacts:
    """Hash, sniff, measure and decode one file (the representative frame of a stack)."""
    try:
        head = read_head(path)
    except OSError as err:
        raise ProbeError(f"cannot read file: {err}") from err
    if not head:
        raise ProbeError("file is empty (0 bytes)")
    fmt = sniff_format(head)
    if fmt == "lfs-pointer":
        raise ProbeError(
            "file is a Git LFS pointer, not the data: run `git lfs install && git lfs pull` in its submodule"
        )
    if fmt in ("unknown", "gzip"):
        raise ProbeError(f"not a recognised image format (first bytes {head[:8]!r})")
    try:
        width, height, frames = _geometry(path, fmt)
        middle = frames // 2 if fmt in ("nifti",) else 0
        pixels = read_pixels(path, frame=middle, fmt=fmt)
    except DecodeError as err:
        raise ProbeError(str(err)) from err
    except Exception as err:
        raise ProbeError(f"cannot decode {fmt}: {type(err).__name__}: {err}") from err
    if fmt == "nifti":
        width, height = pixels.shape[1], pixels.shape[0]
    pixel_sha, phash = fingerprints(pixels)
    return FileFacts(sha256_file(path), fmt, int(width), int(height), int(frames), pixel_sha, phash)
