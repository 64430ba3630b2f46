"""DICOM instance -> display pixels (uint8), the way a radiology viewer shows it.

Stored values -> modality LUT (Rescale Slope/Intercept: Hounsfield units for CT) -> the
file's own VOI (VOI LUT, else Window Center/Width with its VOI LUT Function) ->
MONOCHROME1 inverted. Pixel padding (the area outside the scanner's field of view) is
shown black. A CT without any window gets :data:`~covid19_images.imaging.decoded.LUNG_WINDOW`.
A data set without the 128-byte preamble is read too (``force=True``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from covid19_images.imaging.budget import OverBudget, check_frame_pixels, check_frames
from covid19_images.imaging.decoded import LUNG_WINDOW, Decoded, DecodeError, check_frame, to_uint8


def _read_dataset(path: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        try:
            return pydicom.dcmread(path)
        except InvalidDicomError:
            return pydicom.dcmread(path, force=True)  # a data set without the 128-byte preamble
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise DecodeError(f"not a readable DICOM file: {err}") from err


def _first_number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str | bytes) and hasattr(value, "__len__"):
            value = value[0] if len(value) else None
        return None if value is None else float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _padding_mask(raw: np.ndarray, ds: Any) -> np.ndarray | None:
    """Pixels the modality marked as padding (outside the reconstruction circle), in stored values."""
    pad = _first_number(ds.get("PixelPaddingValue"))
    if pad is None:
        return None
    limit = _first_number(ds.get("PixelPaddingRangeLimit"))
    mask = raw == pad if limit is None else (raw >= min(pad, limit)) & (raw <= max(pad, limit))
    return mask if mask.any() and not mask.all() else None


def _window_to_uint8(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 windowing onto 0..255."""
    function = function.upper() or "LINEAR"
    if function == "SIGMOID":
        scaled = 255.0 / (1.0 + np.exp(-4.0 * (values.astype(np.float64) - center) / width))
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if function == "LINEAR_EXACT":
        return to_uint8(values, center - width / 2, center + width / 2)
    width = max(width, 1.0)
    return to_uint8(values, center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2)


def _lut_range(item: Any) -> tuple[float, float]:
    """Output range of a VOI LUT: its actual entries (LUTData is US or OW), else what LUTDescriptor declares.

    The entries are preferred because LUTs often declare 16 bits and fill only 12.
    """
    data = item.get("LUTData")
    if isinstance(data, bytes | bytearray):
        entries = np.frombuffer(bytes(data), dtype="<u2")
    else:
        entries = np.asarray(data if data is not None else [], dtype=np.float64).ravel()
    if entries.size and float(entries.max()) > float(entries.min()):
        return float(entries.min()), float(entries.max())
    descriptor = item.get("LUTDescriptor") or [0, 0, 16]
    return 0.0, float(2 ** int(descriptor[2]) - 1)


def _dicom_gray(raw: np.ndarray, ds: Any, window: tuple[float, float] | None) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    mask = _padding_mask(raw, ds)
    modality = np.asarray(apply_modality_lut(raw, ds))
    values = modality.astype(np.float32)
    center = _first_number(ds.get("WindowCenter"))
    width = _first_number(ds.get("WindowWidth"))
    if window is not None:
        image = to_uint8(values, float(window[0]), float(window[1]))
    elif "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        lut_input = modality if np.issubdtype(modality.dtype, np.integer) else np.rint(modality).astype(np.int64)
        mapped = apply_voi_lut(lut_input, ds, index=0, prefer_lut=True)
        image = to_uint8(mapped, *_lut_range(ds.VOILUTSequence[0]))
    elif center is not None and width is not None and width > 0:
        image = _window_to_uint8(values, center, width, str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR"))
    elif str(ds.get("Modality", "")).upper() == "CT":
        image = to_uint8(values, *LUNG_WINDOW)
    else:
        kept = values[~mask] if mask is not None else values
        image = to_uint8(values, float(kept.min()), float(kept.max())) if kept.size else to_uint8(values)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        image = 255 - image
    if mask is not None:
        image[mask] = 0
    return image


def _dicom_colour(pixels: np.ndarray, ds: Any) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    bits = int(ds.get("BitsStored", 8) or 8)
    return to_uint8(pixels, 0, 2**bits - 1)


def decode_dicom(path: Path, frame: int | None, window: tuple[float, float] | None) -> Decoded:
    """Decode frame ``frame`` (None: the middle one) of a DICOM file.

    Args:
        path: the DICOM file.
        frame: frame index of a multi-frame instance; None picks the middle frame.
        window: ``(low, high)`` in modality units (HU for CT) overriding the file's own VOI.
    """
    from pydicom.pixels import apply_color_lut, pixel_array

    ds = _read_dataset(path)
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        kind = getattr(ds.get("SOPClassUID"), "name", "") or "no SOP class"
        raise DecodeError(f"DICOM file has no pixel data ({kind}); it is not an image")
    frames = int(_first_number(ds.get("NumberOfFrames")) or 1)
    try:
        check_frames(frames, "DICOM file")
        check_frame_pixels(
            int(_first_number(ds.get("Columns")) or 0), int(_first_number(ds.get("Rows")) or 0), "DICOM file"
        )
    except OverBudget as err:
        raise DecodeError(str(err)) from err
    index = check_frame(frames // 2 if frame is None else frame, frames, "DICOM file")
    try:
        pixels = pixel_array(ds, index=index)
    except Exception as err:  # pydicom raises many types for missing/unsupported codecs
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", None) or str(syntax or "unknown")
        raise DecodeError(f"cannot decode DICOM pixel data (transfer syntax {name}): {err}") from err
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR" and pixels.ndim == 2:
        rgb = apply_color_lut(pixels, ds)
        image = rgb if rgb.dtype == np.uint8 else to_uint8(rgb, 0, 65535 if rgb.max(initial=0) > 255 else 255)
    elif pixels.ndim == 3:  # RGB / YBR: pydicom already returns RGB (as_rgb)
        image = _dicom_colour(pixels, ds)
    else:
        image = _dicom_gray(pixels, ds, window)
    height, width = image.shape[:2]
    return Decoded(image, int(width), int(height), frames, index, "dicom")
