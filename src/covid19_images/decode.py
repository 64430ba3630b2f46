"""The one image reader: any supported file -> uint8 pixels, format detected from bytes.

Every loader, the duplicate finder and ``verify --decode`` go through here, so a quirk
fixed once (MONOCHROME1, 16-bit PNG, WebP named .png, CMYK JPEG) is fixed everywhere.
Pixels come back as ``(H, W)`` for grayscale or ``(H, W, 3)`` for colour, dtype uint8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .formats import IMAGE_FORMATS, VIDEO_FORMATS, read_head, sniff_format


class DecodeError(ValueError):
    """A file that cannot be turned into pixels; the message says why."""


def to_uint8(array: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Linearly map ``[low, high]`` (default: the array's own range) onto 0..255."""
    data = np.asarray(array, dtype=np.float32)
    if low is None or high is None:
        finite = data[np.isfinite(data)]
        if finite.size == 0:
            return np.zeros(data.shape, dtype=np.uint8)
        low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.zeros(data.shape, dtype=np.uint8)
    scaled = (np.nan_to_num(data, nan=low) - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _pil_to_array(image) -> np.ndarray:
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return to_uint8(np.asarray(image))
    if image.mode == "F":
        return to_uint8(np.asarray(image))
    if image.mode in ("L", "1"):
        return np.asarray(image.convert("L"))
    if image.mode in ("LA",):
        return np.asarray(image.convert("L"))
    if image.mode in ("RGBA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _read_pil(path: Path, frame: int, draft_size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if frame:
                image.seek(frame)
            if draft_size and image.format == "JPEG":
                # DCT-domain downscale: decode at 1/2..1/8 size, never below the target.
                image.draft(image.mode if image.mode in ("L", "RGB") else None, draft_size)
            image.load()
            return _pil_to_array(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as err:
        raise DecodeError(f"cannot decode image: {err}") from err


def _read_dicom(path: Path, frame: int) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as err:
        raise DecodeError(f"not a readable DICOM file: {err}") from err
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DecodeError("DICOM file has no pixel data")
    try:
        pixels = ds.pixel_array
    except Exception as err:  # pydicom raises many types for missing/unsupported codecs
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise DecodeError(f"cannot decode DICOM pixel data (transfer syntax {syntax}): {err}") from err
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        pixels = pixels[min(frame, frames - 1)]
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") or pixels.ndim == 3:
        if photometric.startswith("YBR"):
            from pydicom.pixels import convert_color_space

            pixels = convert_color_space(pixels, photometric, "RGB")
        return to_uint8(pixels) if pixels.dtype != np.uint8 else pixels
    values = apply_modality_lut(pixels, ds)
    has_voi = "WindowCenter" in ds or "VOILUTSequence" in ds
    if has_voi:
        values = apply_voi_lut(values, ds, prefer_lut=True)
    image = to_uint8(values)
    if photometric == "MONOCHROME1":
        image = 255 - image
    return image


def _read_nifti(path: Path, frame: int) -> np.ndarray:
    import nibabel

    try:
        volume = nibabel.load(str(path))
        shape = volume.shape
        if len(shape) < 2:
            raise DecodeError(f"NIfTI has shape {shape}, not an image")
        index = min(frame, shape[2] - 1) if len(shape) >= 3 else 0
        data = np.asarray(volume.dataobj[..., index] if len(shape) == 3 else volume.dataobj[:, :, index, ...])
    except DecodeError:
        raise
    except Exception as err:  # nibabel raises ImageFileError, EOFError, zlib errors ...
        raise DecodeError(f"cannot read NIfTI: {err}") from err
    while data.ndim > 2:
        data = data[..., 0]
    # NIfTI stores x fastest (i = column); transpose to rows x columns for display.
    data = np.rot90(data)
    if np.issubdtype(data.dtype, np.floating) or data.dtype.itemsize > 1:
        return to_uint8(np.clip(data, -1000, 400) if float(np.nanmin(data)) < -500 else data)
    return data.astype(np.uint8)


def _read_video(path: Path, frame: int) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as container:
            for index, decoded in enumerate(container.decode(video=0)):
                if index >= frame:
                    return decoded.to_ndarray(format="rgb24")
    except Exception as err:  # PyAV raises its own error tree
        raise DecodeError(f"cannot decode video: {err}") from err
    raise DecodeError(f"video has no frame {frame}")


def read_pixels(
    path: str | Path,
    *,
    frame: int = 0,
    fmt: str | None = None,
    draft_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode one 2-D image (or one slice/frame of a volume or video) to uint8 pixels.

    ``frame`` selects the slice of a NIfTI volume, the frame of a multi-frame DICOM, GIF
    or video. ``draft_size`` lets JPEG decode at a reduced scale (at least that size).
    """
    path = Path(path)
    if not path.is_file():
        raise DecodeError(f"file not found: {path}")
    kind = fmt or sniff_format(read_head(path))
    if kind in IMAGE_FORMATS:
        return _read_pil(path, frame, draft_size)
    if kind == "dicom":
        return _read_dicom(path, frame)
    if kind == "nifti":
        return _read_nifti(path, frame)
    if kind in VIDEO_FORMATS:
        return _read_video(path, frame)
    if kind == "lfs-pointer":
        raise DecodeError("file is a Git LFS pointer, not the data: run `git lfs pull` in its submodule")
    raise DecodeError(f"unsupported or unrecognised format ({kind})")
