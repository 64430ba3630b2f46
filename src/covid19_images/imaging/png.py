"""Fast PNG decoding with pyspng (libspng) where it gives exactly Pillow's pixels; Pillow otherwise.

Measured on the 96 real PNGs of ../shared/upstream (one core, CPU time, median of 5):
Pillow 164 img/s, imagecodecs 221, pyspng 242 (docs/benchmarks.md). libspng is used only
for the PNGs whose pixels it returns exactly as the Pillow path does: 8-bit grayscale, RGB
or RGBA (composited on black with Pillow's own integer arithmetic), one frame, no
transparency chunk, no EXIF rotation; palette, grey + alpha, low bit depths and APNG stay
with Pillow, so manifests' pixel hashes never change.
pyspng is optional: without it (or if it fails on a file) Pillow decodes as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: IHDR colour types libspng serves here: 0 grayscale, 2 RGB, 6 RGBA (grey + alpha stays with Pillow).
_FAST_COLOUR_TYPES = {0: "L", 2: "RGB", 6: "RGBA"}


def composite_on_black(pixels: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` RGBA uint8 pixels on black, as the Pillow path gives them.

    Pillow's ``alpha_composite`` on an opaque black background reduces to
    ``value * alpha / 255`` rounded to nearest, which is exactly Pillow's conversion to
    premultiplied ``RGBa`` (the same ``MULDIV255``): one pass in C, where the Pillow path
    makes four (``tests/imaging/test_png_fast.py`` compares all 65,536 (value, alpha) pairs).
    """
    from PIL import Image

    return np.asarray(Image.fromarray(pixels, "RGBA").convert("RGBa"))[..., :3]


def fast_png_pixels(path: Path, head: bytes) -> np.ndarray | None:
    """The PNG's pixels as Pillow would give them (uint8), or None.

    ``head`` is the start of the file (the IHDR chunk must be in it). None means "use
    Pillow": pyspng missing, a PNG kind it does not serve identically, or any error.
    """
    if png_kind(head) is None:
        return None  # checked on the head first: no need to read the whole file
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return fast_png_bytes(data)


def png_kind(head: bytes) -> int | None:
    """The IHDR colour type of a PNG libspng serves exactly as Pillow does (0 grey, 2 RGB,
    6 RGBA), or None: not a PNG, 16-bit or low bit depth (pyspng 0.1.4 returns gray16 as two
    uint8 channels, and Pillow reads RGB16 as RGB8), palette, grey + alpha, unknown interlace."""
    if len(head) < 33 or head[12:16] != b"IHDR":
        return None
    bit_depth, colour_type, interlace = head[24], head[25], head[28]
    if colour_type not in _FAST_COLOUR_TYPES or bit_depth != 8 or interlace not in (0, 1):
        return None
    return colour_type


def fast_png_bytes(data: bytes) -> np.ndarray | None:
    """:func:`fast_png_pixels` on a PNG already in memory (a tar member of an export, say)."""
    colour_type = png_kind(data[:33])
    if colour_type is None:
        return None
    try:
        import pyspng
    except ImportError:
        return None
    try:
        if any(tag in data for tag in (b"tRNS", b"acTL", b"eXIf", b"Raw profile type exif")):
            return None  # transparency, animation or EXIF orientation: Pillow's rules apply
        pixels = pyspng.load(data)
    except Exception:  # noqa: BLE001 - any libspng failure falls back to Pillow, which reports properly
        return None
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    elif colour_type == 6:  # transparent margins of figure crops: black, as decode's display rule says
        pixels = composite_on_black(pixels)
    return np.ascontiguousarray(pixels)
