"""Pixels and containers for ``build_miniatures.py``: downscaled re-encodes and synthetic stand-ins.

Every function here is deterministic: the same input (or the same seed) gives the same bytes,
so re-running the build reproduces the committed miniatures exactly. Synthetic pictures are
seeded from the file's relative path, so a file that is identical in two upstream snapshots
stays identical in the miniature.
"""

from __future__ import annotations

import hashlib
import io
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

MAX_SIDE = 256


def seed_of(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def small_size(size: tuple[int, int], max_side: int = MAX_SIDE) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(8, round(width * scale)), max(8, round(height * scale))


def _smooth_field(rng: np.random.Generator, width: int, height: int, cells: int = 6) -> np.ndarray:
    """Low-frequency noise in [0, 1]: what makes two synthetic pictures' perceptual hashes differ."""
    grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(grid).resize((width, height), Image.BICUBIC), dtype=np.float64) / 255


def synthetic_grey(kind: str, width: int, height: int, seed: int) -> np.ndarray:
    """A plausible-looking but invented picture: ``xray`` (thorax), ``ct`` (axial slice), ``us`` (sector).

    Placement, size and texture are drawn from ``seed`` with a wide spread, so no two synthetic
    pictures are near-duplicates of each other (the dedup tests count near-duplicate pairs).
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    shift_x, shift_y, scale = 0.12 * rng.standard_normal(), 0.12 * rng.standard_normal(), 0.75 + 0.5 * rng.random()
    u = (x / max(width - 1, 1) - 0.5 - shift_x) / scale
    v = (y / max(height - 1, 1) - 0.5 - shift_y) / scale
    field = _smooth_field(rng, width, height, cells=int(rng.integers(3, 8)))
    blobs = np.zeros_like(u)
    for _ in range(int(rng.integers(2, 6))):
        cx, cy, r = rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), rng.uniform(0.05, 0.2)
        blobs += rng.uniform(-1, 1) * np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2 * r * r))
    if kind == "us":
        angle, radius = np.arctan2(u, v + 0.55), np.hypot(u, v + 0.55)
        sector = (np.abs(angle) < 0.4 + 0.4 * rng.random()) & (radius > 0.15) & (radius < 1.0)
        speckle = rng.rayleigh(0.35, (height, width))
        pleura = np.exp(-(((radius - 0.3 - 0.2 * rng.random()) / 0.015) ** 2))
        image = sector * (0.25 * speckle + 0.8 * pleura + 0.6 * field + 0.3 * blobs)
    elif kind == "ct":
        body = (u / (0.35 + 0.15 * rng.random())) ** 2 + (v / (0.3 + 0.12 * rng.random())) ** 2 < 1
        lungs = np.zeros_like(u, dtype=bool)
        for side in (-1, 1):
            cx, cy = side * (0.12 + 0.1 * rng.random()), 0.05 * rng.standard_normal()
            lungs |= ((u - cx) / (0.08 + 0.08 * rng.random())) ** 2 + ((v - cy) / (0.15 + 0.15 * rng.random())) ** 2 < 1
        image = 0.5 * body - 0.4 * lungs + 0.9 * field + 0.4 * blobs + 0.03 * rng.standard_normal(u.shape)
    else:
        body = np.clip(1 - (u / (0.35 + 0.2 * rng.random())) ** 2, 0, 1) ** 0.5
        image = 0.5 * body
        for side in (-1, 1):
            cx, cy = side * (0.12 + 0.15 * rng.random()), 0.08 * rng.standard_normal()
            lung = ((u - cx) / (0.1 + 0.1 * rng.random())) ** 2 + ((v - cy) / (0.2 + 0.15 * rng.random())) ** 2
            image -= 0.35 * np.clip(1 - lung, 0, 1) ** 0.5
        ribs = 0.06 * (np.sin(v * (20 + 20 * rng.random()) + np.abs(u) * 6) > 0.7)
        spine = 0.25 * np.exp(-((u / 0.04) ** 2))
        image = image + ribs + spine + 0.8 * field + 0.4 * blobs + 0.02 * rng.standard_normal(u.shape)
    image = (image - image.min()) / max(image.max() - image.min(), 1e-9)
    return (image ** rng.uniform(0.7, 1.4) * 255).astype(np.uint8)


def to_mode(grey: np.ndarray, mode: str, seed: int) -> Image.Image:
    """``grey`` in the upstream file's mode; RGBA gets a real alpha ramp so compositing is exercised."""
    image = Image.fromarray(grey, "L")
    if mode in ("L", "1", "P", "I;16", "I"):
        return image
    rgb = Image.merge("RGB", (image, image, image))
    if mode == "RGBA":
        height, width = grey.shape
        alpha = np.full((height, width), 255, np.uint8)
        ramp = np.linspace(0, 255, max(width // 6, 1)).astype(np.uint8)
        alpha[:, : ramp.size] = ramp  # a transparent-to-opaque margin, as figure crops have
        rgba = rgb.convert("RGBA")
        rgba.putalpha(Image.fromarray(alpha, "L"))
        return rgba
    return rgb


def encode(image: Image.Image, fmt: str, *, progressive: bool = False, quality: int = 80) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image = image.convert("L" if image.mode in ("L", "I;16", "I") else "RGB")
        image.save(out, "JPEG", quality=quality, progressive=progressive, optimize=progressive)
    elif fmt == "PNG":
        image.save(out, "PNG", optimize=True)
    elif fmt == "GIF":
        image.save(out, "GIF")
    else:
        raise ValueError(fmt)
    return out.getvalue()


def facts(path: Path) -> tuple[str, str, tuple[int, int], bool]:
    with Image.open(path) as image:
        progressive = bool(image.info.get("progressive") or image.info.get("progression"))
        return image.format, image.mode, image.size, progressive


def real_downscaled(path: Path, max_side: int = MAX_SIDE, *, mask: bool = False) -> bytes:
    """The real picture, downscaled and re-encoded in its own format, mode and JPEG flavour.

    ``mask``: a label image (values are classes, e.g. 0/255): nearest neighbour, so no value
    the upstream mask does not hold appears at the edges."""
    fmt, mode, size, progressive = facts(path)
    with Image.open(path) as image:
        image.load()
        small = image.resize(small_size(size, max_side), Image.NEAREST if mask else Image.LANCZOS)
    if mode not in ("L", "RGB", "RGBA"):
        small = small.convert("RGB")
    return encode(small, fmt, progressive=progressive)


def synthetic_like(path: Path, relative: str, kind: str, max_side: int = MAX_SIDE) -> bytes:
    """An invented picture with the upstream file's format, mode, aspect ratio and JPEG flavour."""
    fmt, mode, size, progressive = facts(path)
    width, height = small_size(size, max_side)
    seed = seed_of(relative)
    return encode(to_mode(synthetic_grey(kind, width, height, seed), mode, seed), fmt, progressive=progressive)


def png16(grey: np.ndarray) -> bytes:
    """A 16-bit greyscale PNG (Pillow mode I;16) spanning the full 0..65535 range."""
    out = io.BytesIO()
    Image.fromarray(grey.astype(np.uint16) * 257).save(out, "PNG")
    return out.getvalue()


# --- video ----------------------------------------------------------------------------------

_CODECS = {
    ".mp4": ("mp4", "mpeg4"),
    ".avi": ("avi", "mpeg4"),
    ".mov": ("mov", "mpeg4"),
    ".mpeg": ("mpeg", "mpeg1video"),
}


def read_frames(path: Path, count: int, max_side: int) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_image()
            frames.append(np.asarray(image.resize(small_size(image.size, max_side), Image.LANCZOS).convert("RGB")))
            if len(frames) == count:
                break
    return frames


def synthetic_frames(relative: str, size: tuple[int, int], count: int) -> list[np.ndarray]:
    width, height = size
    base = synthetic_grey("us", width, height * 2, seed_of(relative))
    frames = []
    for index in range(count):  # the lung "slides": a window moving over a taller picture
        crop = base[index * 2 : index * 2 + height]
        frames.append(np.stack([crop] * 3, axis=-1))
    return frames


def encode_video(frames: list[np.ndarray], suffix: str, rate: int = 10) -> bytes:
    """A short clip in the container the upstream used (by suffix), one thread, no timestamps."""
    import av

    fmt, codec = _CODECS[suffix.lower()]
    height, width = frames[0].shape[:2]
    width, height = width - width % 2, height - height % 2
    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=Fraction(rate if codec != "mpeg1video" else 25, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.thread_count = 1
        stream.options = {"qscale": "6"} if codec == "mpeg4" else {}
        if codec == "mpeg4":
            stream.codec_context.qscale = 6
        container.metadata.clear() if hasattr(container.metadata, "clear") else None
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array[:height, :width]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def encode_gif(frames: list[np.ndarray]) -> bytes:
    images = [Image.fromarray(f).convert("P", palette=Image.ADAPTIVE, colors=64) for f in frames]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()
