"""What a decoder returns and the grey-level mapping every decoder shares.

Kept apart from the readers (:mod:`covid19_images.imaging.decode` for images, NIfTI and
video; :mod:`covid19_images.imaging.dicom` for DICOM) so each reader imports it without
importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The lung window in Hounsfield units, used for CT without a window of its own.
LUNG_WINDOW: tuple[float, float] = (-1350.0, 150.0)


class DecodeError(ValueError):
    """A file that cannot be turned into pixels; the message says why."""


@dataclass(frozen=True)
class Decoded:
    """One decoded frame plus the file's geometry, from a single pass over the file.

    ``width``/``height`` are those of a full-resolution frame as displayed (after EXIF
    rotation or NIfTI orientation), even when ``draft_size`` decoded a smaller picture.
    """

    pixels: np.ndarray
    width: int
    height: int
    frames: int
    frame: int
    format: str


def to_uint8(array: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Linearly map ``[low, high]`` (default: the array's own finite range) onto 0..255, clipping outside."""
    data = np.asarray(array, dtype=np.float32)
    if low is None or high is None:
        finite = data[np.isfinite(data)]
        if finite.size == 0:
            return np.zeros(data.shape, dtype=np.uint8)
        low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.zeros(data.shape, dtype=np.uint8)
    scaled = (np.nan_to_num(data, nan=low, posinf=high, neginf=low) - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def check_frame(frame: int, frames: int, what: str) -> int:
    """``frame`` if ``what`` (holding ``frames`` frames) has it, else a :class:`DecodeError`."""
    if frame < 0 or frame >= frames:
        raise DecodeError(f"{what} has {frames} frame(s); frame {frame} does not exist")
    return frame
