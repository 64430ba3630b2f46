"""Label images (segmentation masks) read as their stored values, never windowed or rescaled.

``read_pixels`` maps an image to display uint8 (windowing, contrast); a mask must keep its
class values (0/127/255 for V7, 0-3 for MedSeg). A NIfTI mask slice gets the same display
orientation as ``read_pixels`` gives its image slice, so the two stay aligned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from covid19_images.imaging.decode import DecodeError, _display_slice


def read_mask(path: str | Path, frame: int = 0) -> np.ndarray:
    """The mask's values as a 2-D uint8 array (rows, columns) in display orientation."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel

        try:
            volume = nibabel.load(str(path))
            shape = volume.shape
            index = frame if len(shape) >= 3 else None
            if index is not None and not 0 <= index < shape[2]:
                raise DecodeError(f"mask slice {frame} does not exist ({shape[2]} slices)")
            slicer = (slice(None), slice(None)) + ((index,) if index is not None else ())
            data = np.asarray(volume.dataobj[slicer], dtype=np.float64)
            affine = volume.affine
        except DecodeError:
            raise
        except Exception as err:  # nibabel raises many kinds
            raise DecodeError(f"cannot read NIfTI mask: {err}") from err
        return np.ascontiguousarray(np.clip(np.rint(_display_slice(data, affine)), 0, 255).astype(np.uint8))
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "1", "I", "I;16"):
                image = image.convert("L")
            values = np.asarray(image)
    except (OSError, UnidentifiedImageError) as err:
        raise DecodeError(f"cannot read mask: {err}") from err
    return np.ascontiguousarray(np.clip(values, 0, 255).astype(np.uint8))


def resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize: class values stay class values (no blending at edges)."""
    if mask.shape[:2] == (height, width):
        return mask
    from PIL import Image

    return np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))


#: the ``value`` prefix of a mask annotation drawn as an outline in a JSON export (MD.ai freeform)
OUTLINE_PREFIX = "outline:"
MAX_OUTLINE_EXPORT_BYTES = 256 * 1024 * 1024


def _outlines(path: Path, stamp: tuple[int, int]) -> dict[str, list]:
    """annotation id -> vertices of an MD.ai export (``datasets[].annotations[].data.vertices``)."""
    import json

    if stamp[1] > MAX_OUTLINE_EXPORT_BYTES:
        raise DecodeError(f"outline export of {stamp[1]} bytes is larger than any MD.ai export")
    try:
        export = json.loads(path.read_text(encoding="utf-8"))
        items = [a for dataset in export["datasets"] for a in dataset["annotations"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DecodeError(f"cannot read outline export: {err}") from err
    found = {}
    for item in items:
        data = item.get("data") if isinstance(item, dict) else None
        if isinstance(data, dict) and isinstance(data.get("vertices"), list):
            found[str(item.get("id"))] = data["vertices"]
    return found


_OUTLINE_CACHE: dict[tuple[str, tuple[int, int]], dict[str, list]] = {}


def read_outline_mask(path: str | Path, ids: list[str], height: int, width: int) -> np.ndarray:
    """The union of the outlines ``ids`` of an MD.ai export, filled with 255 on a ``height x width`` canvas.

    MD.ai stores a freeform segmentation as the vertices of its outline in pixels of the slice
    it was drawn on, not as a label image; drawing them at that slice's size gives the mask the
    loaders serve like any other (then resized with the image). The parsed export is kept per
    file and modification time, so an epoch reads it once.
    """
    from PIL import Image, ImageDraw

    path = Path(path)
    stat = path.stat()
    key = (str(path), (stat.st_mtime_ns, stat.st_size))
    if key not in _OUTLINE_CACHE:
        _OUTLINE_CACHE.clear()  # one export at a time: bounded memory
        _OUTLINE_CACHE[key] = _outlines(path, key[1])
    outlines = _OUTLINE_CACHE[key]
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for ident in ids:
        vertices = outlines.get(ident.removeprefix(OUTLINE_PREFIX))
        if vertices is None:
            raise DecodeError(f"no outline {ident!r} in {path.name}")
        try:
            points = [(float(x), float(y)) for x, y in vertices]
        except (TypeError, ValueError) as err:
            raise DecodeError(f"outline {ident!r} of {path.name} is not a list of (x, y): {err}") from err
        if len(points) >= 3:
            draw.polygon(points, fill=255, outline=255)
    return np.asarray(canvas, dtype=np.uint8)


def read_outline_volume(path: str | Path, per_slice: list[tuple[str, ...]], height: int, width: int) -> np.ndarray:
    """A ``(z, height, width)`` uint8 mask volume: slice k holds the outlines ``per_slice[k]`` filled with 255.

    A slice with no outline was annotated as holding none (MD.ai annotates a series, not a slice),
    so it is 0, not missing: the series keeps every slice it has.
    """
    volume = np.zeros((len(per_slice), height, width), dtype=np.uint8)
    for k, ids in enumerate(per_slice):
        if ids:
            volume[k] = read_outline_mask(path, list(ids), height, width)
    return volume
