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
