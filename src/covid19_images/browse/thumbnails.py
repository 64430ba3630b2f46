"""Thumbnails and display images, decoded by the project's one reader and cached by content.

Pixels come from :func:`covid19_images.imaging.decode.decode_file`, the path every loader and
the duplicate finder use, so a DICOM is windowed, a 16-bit PNG stretched, a NIfTI volume shown
by its middle slice and a video by its first frame exactly as everywhere else. A picture is
keyed by the file's ``sha256`` (its content: the same bytes in two sources are decoded once,
and a changed file gets a new entry), the size and :data:`RENDER_VERSION`; entries are written
atomically, so a crash leaves either the old entry or none.

Decoding is the cost: JPEGs decode at reduced scale (``draft``), and :meth:`Renderer.build`
fills the cache over a thread pool (Pillow, pyspng and pydicom's decoders release the GIL).
``benchmarks/bench_browse.py`` measures it against decoding in full and resizing.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from covid19_images.core.paths import DATASETS_DIR, UnsafePath, safe_relative
from covid19_images.imaging.decode import DecodeError, decode_file
from covid19_images.imaging.masks import OUTLINE_PREFIX, read_mask, read_outline_mask, resize_nearest
from covid19_images.manifest.source_cache import cache_dir_of

#: Bump when the pictures change for the same bytes (another resampling, quality, framing).
RENDER_VERSION = 1
THUMB_SIZE = 192
DISPLAY_SIZE = 768
#: Overlay colour per mask name (RGBA); others get the last one.
MASK_COLOURS = {
    "lung": (0, 200, 255, 110),
    "ground_glass": (255, 200, 0, 130),
    "consolidation": (255, 60, 60, 140),
    "pleural_effusion": (120, 255, 120, 130),
    "infectious_opacity": (255, 140, 0, 140),
}
_OTHER_COLOUR = (255, 0, 255, 120)


def default_cache_dir(root: Path) -> Path:
    """``<root's git dir>/covid19-images-cache/browse`` (never tracked), else ``<root>/.cache/...``."""
    base = cache_dir_of(root)
    return (base if base is not None else Path(root) / ".cache" / "covid19-images") / "browse"


def write_replacing(path: Path, data: bytes) -> None:
    """Write next to ``path``, then rename over it: a reader sees the old file or the whole new one.

    No fsync: a cache entry or a page of an export can be made again; a torn entry after a power
    loss is caught on read (:meth:`Renderer.picture` checks the JPEG end marker).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _to_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=82)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


@lru_cache(maxsize=4)
def placeholder(size: int, text: str = "cannot decode") -> bytes:
    """A grey tile for a file that cannot be decoded (not cached on disk: the file may be fixed)."""
    image = Image.new("L", (size, size), 48)
    ImageDraw.Draw(image).text((8, size // 2 - 6), text, fill=200)
    return _png(image)


def inside_datasets(root: Path, path: str) -> Path:
    """``root/path`` once proved to stay inside ``root/datasets`` (a hand-edited manifest may say ``../``)."""
    prefix = f"{DATASETS_DIR}/"
    if not path.startswith(prefix):
        raise DecodeError(f"{path!r} is not under {prefix}")
    try:
        clean = safe_relative(Path(root) / DATASETS_DIR, path[len(prefix) :])
    except UnsafePath as err:
        raise DecodeError(str(err)) from err
    return Path(root) / DATASETS_DIR / clean


def fitted(root: Path, path: str, fmt: str, size: int) -> Image.Image:
    """The representative frame of a manifest file, scaled to fit ``size`` x ``size``.

    Decoded with ``threaded=True``: the server's request threads and :meth:`Renderer.build`'s pool
    decode side by side, so decoders that release the GIL win over faster ones that hold it.
    """
    path_on_disk = inside_datasets(root, path)
    decoded = decode_file(path_on_disk, frame=None, fmt=fmt or None, draft_size=(size, size), threaded=True)
    image = _to_image(decoded.pixels)
    image.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


def _pixel_count(row) -> int:
    """Width x height from the manifest row (0 when unknown): the decode cost, roughly."""
    try:
        return int(row["width"]) * int(row["height"])
    except (KeyError, TypeError, ValueError):
        return 0


class Renderer:
    """Cached JPEG thumbnails and display images of manifest rows, plus overlays and differences."""

    def __init__(self, root: Path, cache_dir: Path | None = None) -> None:
        self.root = Path(root)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(self.root)

    def _entry(self, sha256: str, size: int) -> Path | None:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            return None  # no content hash: nothing to key a cache entry by
        return self.cache_dir / f"v{RENDER_VERSION}" / str(size) / sha256[:2] / f"{sha256}.jpg"

    def picture(self, row, size: int = THUMB_SIZE) -> tuple[bytes, str]:
        """(bytes, media type) of one manifest row at ``size``: from the cache, else decoded and cached."""
        entry = self._entry(str(row["sha256"]), size)
        if entry is not None:
            try:
                data = entry.read_bytes()
                if data.endswith(b"\xff\xd9"):  # a whole JPEG (a torn entry is made again)
                    return data, "image/jpeg"
            except OSError:
                pass
        try:
            data = _jpeg(fitted(self.root, str(row["path"]), str(row["format"]), size))
        except (DecodeError, OSError, ValueError):
            return placeholder(size), "image/png"
        if entry is not None:
            write_replacing(entry, data)
        return data, "image/jpeg"

    def build(self, rows: Iterable, size: int = THUMB_SIZE, workers: int | None = None) -> int:
        """Fill the cache for ``rows`` (manifest rows) over a thread pool; returns how many were decoded."""
        todo, seen = [], set()
        for row in rows:
            entry = self._entry(str(row["sha256"]), size)
            if entry is not None and entry not in seen and not entry.is_file():
                seen.add(entry)
                todo.append(row)
        # largest first, so no big PNG is left for one thread at the end while the others idle
        todo.sort(key=_pixel_count, reverse=True)
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
            list(pool.map(lambda r: self.picture(r, size), todo))
        return len(todo)

    def overlay(self, row, annotation) -> bytes:
        """A transparent PNG the size of the display image: the mask's pixels of its value, coloured.

        An outline (``value`` ``outline:<id>``, RICORD-1a's MD.ai freeform segmentations) is the
        border of the region a reader segmented, stored as vertices in the export, not as a label
        image: it is drawn filled at the size of the image it was drawn on, as the loaders serve it.
        """
        width, height = Image.open(io.BytesIO(self.picture(row, DISPLAY_SIZE)[0])).size
        frame = int(annotation["frame"]) if str(annotation["frame"]).isdigit() else 0
        value = str(annotation["value"])
        try:
            path = inside_datasets(self.root, str(annotation["path"]))
            if value.startswith(OUTLINE_PREFIX):
                mask = read_outline_mask(path, [value], int(row["height"]), int(row["width"]))
            else:
                mask = read_mask(path, frame)
        except (DecodeError, OSError, ValueError):
            return _png(Image.new("RGBA", (width, height)))
        target = int(value) if value.isdigit() else 255
        hit = resize_nearest(mask, height, width) == target
        rgba = np.zeros((height, width, 4), dtype=np.uint8)
        rgba[hit] = MASK_COLOURS.get(str(annotation["name"]), _OTHER_COLOUR)
        return _png(Image.fromarray(rgba, "RGBA"))

    def difference(self, row_a, row_b, size: int = 384) -> bytes:
        """|a - b| of two pictures (grayscale, b resized to a), contrast-stretched: where two copies differ."""
        try:
            a = fitted(self.root, str(row_a["path"]), str(row_a["format"]), size).convert("L")
            b = fitted(self.root, str(row_b["path"]), str(row_b["format"]), size).convert("L").resize(a.size)
        except (DecodeError, OSError, ValueError):
            return placeholder(size)
        diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
        top = max(int(diff.max()), 1)
        return _png(Image.fromarray((diff * (255 / top)).astype(np.uint8), "L"))
