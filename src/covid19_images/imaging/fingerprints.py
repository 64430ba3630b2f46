"""Fingerprints of a decoded picture: the pixel digest and the 256-bit perceptual hash.

They are computed once per file when it is probed (``imaging.probe``) and compared later by
``manifest.duplicates``; keeping them here lets probing stay below the manifest layer.
"""

from __future__ import annotations

import hashlib

import numpy as np

#: Side of the normalised grayscale thumbnail every fingerprint and pixel check works on.
THUMB_SIZE = 64
#: The hash keeps the ``PHASH_SIZE`` x ``PHASH_SIZE`` lowest DCT frequencies of the thumbnail.
PHASH_SIZE = 16
PHASH_BITS = PHASH_SIZE * PHASH_SIZE
PHASH_HEX = PHASH_BITS // 4


def _low_dct_rows(size: int = THUMB_SIZE, kept: int = PHASH_SIZE) -> np.ndarray:
    """The first ``kept`` rows of the orthonormal DCT-II matrix of length ``size``.

    The hash needs only the lowest 16 x 16 of the thumbnail's 64 x 64 coefficients, and
    ``rows @ thumb @ rows.T`` gives exactly those (SciPy's ``dctn(type=2, norm="ortho")`` up to
    rounding) in a tenth of the time, without importing ``scipy.fft`` (0.04-0.08 s of a one-image
    sync, measured).
    """
    frequency = np.arange(kept, dtype=np.float64)[:, None]
    sample = np.arange(size, dtype=np.float64)[None, :]
    rows = np.sqrt(2.0 / size) * np.cos(np.pi * (2 * sample + 1) * frequency / (2 * size))
    rows[0] /= np.sqrt(2.0)
    return rows


_DCT_ROWS = _low_dct_rows()


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """Grayscale uint8 the way ``pixel_sha256`` sees it (PIL's ITU-R 601 luma for colour)."""
    from PIL import Image

    if pixels.ndim == 2:
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return pixels[:, :, 0]
    return np.asarray(Image.fromarray(pixels).convert("L"))


def normalised_thumbnail(pixels: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """A ``size`` x ``size`` float32 thumbnail with zero mean and unit variance.

    Squashing to a square ignores aspect ratio on purpose (Darshan's copies are 400x300
    whatever the original was), area averaging removes JPEG noise, and z-scoring removes
    brightness/contrast changes. A flat picture gives all zeros.
    """
    from PIL import Image

    image = Image.fromarray(to_gray(pixels))
    thumb = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0), dtype=np.float32)
    std = float(thumb.std())
    if std < 1e-3:
        return np.zeros((size, size), dtype=np.float32)
    return (thumb - float(thumb.mean())) / std


def phash_of_thumbnail(thumb: np.ndarray) -> str:
    """256-bit DCT hash (hex) of a normalised thumbnail; ``""`` for a flat picture.

    Bit k says whether the k-th lowest-frequency DCT coefficient (orthonormal DCT-II, row by
    row of the 16 x 16 corner) is above the median of the 255 non-constant ones. The constant
    (DC) term is 0 after z-scoring and always gives 0. A flat picture has no content to
    compare, so it gets no hash rather than one that would match every other flat picture.
    """
    if not thumb.any():
        return ""
    coefficients = (_DCT_ROWS @ thumb.astype(np.float64) @ _DCT_ROWS.T).ravel()
    bits = coefficients > np.median(coefficients[1:])
    bits[0] = False
    return np.packbits(bits).tobytes().hex()


def perceptual_hash(pixels: np.ndarray) -> str:
    """The ``phash`` column: :func:`phash_of_thumbnail` of :func:`normalised_thumbnail`."""
    return phash_of_thumbnail(normalised_thumbnail(pixels))


def pixel_digest(gray: np.ndarray) -> str:
    """The ``pixel_sha256`` column: shape plus grayscale bytes, so a colour re-save still matches."""
    return hashlib.sha256(
        f"{gray.shape[0]}x{gray.shape[1]}:".encode() + np.ascontiguousarray(gray).tobytes()
    ).hexdigest()


def thumbnail_mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference of two normalised thumbnails (0 same picture, about 2 unrelated)."""
    return float(np.mean((a - b) ** 2))
