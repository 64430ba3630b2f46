"""The one image reader: any supported file -> uint8 pixels, format detected from bytes.

Every loader, the duplicate finder and ``verify --decode`` go through here, so a quirk
fixed once (MONOCHROME1, 16-bit PNG, WebP named .png, CMYK JPEG) is fixed everywhere.
Pixels come back as ``(H, W)`` for grayscale or ``(H, W, 3)`` for colour, dtype uint8.

Display rules, and why:

* Transparent images (RGBA/LA/P with transparency) are composited on black: the
  transparent margins of figure crops are background, and black is what X-ray and CT
  background looks like.
* 16-bit and float images are stretched over the image's own value range. 16-bit PNGs
  usually carry 10-12 significant bits, so dividing by 256 would give a near-black picture.
* EXIF orientation is applied, as every browser and GitHub do when a curator looks at
  the picture.
* DICOM: stored values -> modality LUT (Rescale Slope/Intercept: Hounsfield units for CT)
  -> the file's own VOI (VOI LUT, else Window Center/Width with its VOI LUT Function)
  -> MONOCHROME1 inverted. Pixel padding (the area outside the scanner's field of view)
  is shown black. A CT without any window gets the lung window -1350..150 HU (centre -600,
  width 1500): every COVID-19 CT finding (ground glass, crazy paving, consolidation)
  lives in the lung parenchyma, which a soft-tissue window (50/350) paints black.
* NIfTI: the slice is oriented from the affine like a DICOM viewer shows an axial slice
  (image left = patient right, image top = anterior); intensities that look like HU
  (air below -500) get the lung window, anything else (masks, normalised data) its range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from covid19_images.imaging.budget import OverBudget, check_frame_pixels, check_frames, max_frames
from covid19_images.imaging.decoded import (
    LUNG_WINDOW,
    Decoded,
    DecodeError,
    check_frame,
    to_uint8,
)
from covid19_images.imaging.dicom import decode_dicom
from covid19_images.imaging.formats import IMAGE_FORMATS, LFS_MESSAGE, VIDEO_FORMATS, read_head, sniff_format
from covid19_images.imaging.png import fast_png_pixels

#: A NIfTI slice whose minimum is below this is treated as CT in HU.
_HU_AIR_THRESHOLD = -500.0

# --- PIL images -------------------------------------------------------------------------


def _composite_on_black(image: Any) -> np.ndarray:
    from PIL import Image

    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))


def _pil_to_array(image: Any) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return to_uint8(np.asarray(image))
    if mode in ("L", "1"):
        return np.asarray(image.convert("L"))
    if mode in ("LA", "La"):
        la = np.asarray(image.convert("LA"), dtype=np.uint16)
        return (la[..., 0] * la[..., 1] // 255).astype(np.uint8)
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in image.info):
        return _composite_on_black(image)
    return np.asarray(image.convert("RGB"))


def _pil_frames(image: Any) -> int:
    """The frame count, checked against the budget without walking an unbounded animation.

    APNG and TIFF know theirs from the header (an APNG may claim 2^31); GIF has no count, and
    Pillow's ``n_frames`` walks every frame, so a GIF is walked only up to the budget.
    """
    limit = max_frames()
    if image.format == "GIF" and getattr(image, "_n_frames", None) is None:
        count = 1
        try:
            while count <= limit:
                image.seek(count)
                count += 1
        except EOFError:
            pass
        image.seek(0)
        frames = count
    else:
        frames = int(getattr(image, "n_frames", 1) or 1)
    check_frames(frames, f"{image.format} image")
    return frames


def _decode_pil(
    path: Path, fmt: str, frame: int | None, draft_size: tuple[int, int] | None, threaded: bool = False
) -> Decoded:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            check_frame_pixels(*image.size, f"{image.format} image")
            frames = _pil_frames(image)
            index = check_frame(frame or 0, frames, f"{image.format} image")
            if index:
                image.seek(index)
            width, height = image.size
            # before getexif(): Pillow's PNG getexif() decodes the whole image to look for eXIf
            # libspng holds the GIL: threads decoding side by side are faster with Pillow, which releases it
            use_spng = image.format == "PNG" and frames == 1 and not threaded
            fast = fast_png_pixels(path, read_head(path)) if use_spng else None
            if fast is not None:  # libspng served it: no eXIf chunk, so no EXIF rotation
                return Decoded(fast, int(width), int(height), frames, index, fmt)
            orientation = image.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            if draft_size and image.format == "JPEG":
                # DCT-domain downscale: decode at 1/2..1/8 size, never below the target.
                image.draft(image.mode if image.mode in ("L", "RGB") else None, draft_size)
            image.load()
            if orientation not in (None, 1):
                image = ImageOps.exif_transpose(image)
            pixels = _pil_to_array(image)
    except DecodeError:
        raise
    except OverBudget as err:
        raise DecodeError(str(err)) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise DecodeError(f"cannot decode {fmt} image: {err}") from err
    return Decoded(pixels, int(width), int(height), frames, index, fmt)


# --- NIfTI ------------------------------------------------------------------------------


def _display_slice(data: np.ndarray, affine: np.ndarray | None) -> np.ndarray:
    """Orient one (i, j) slice for display from the image's affine.

    Columns run along the in-plane world axis with the lower index (x before y before z),
    rows along the other; both run towards negative RAS (patient left, posterior,
    inferior). That is how a DICOM viewer shows axial, coronal and sagittal images, and for
    the usual affines it equals ``np.rot90(slice)``, the convention MedSeg users know.
    """
    import nibabel

    orientation = None
    if affine is not None:
        try:
            orientation = nibabel.orientations.io_orientation(affine)
        except (ValueError, np.linalg.LinAlgError):  # a singular or malformed affine
            orientation = None
    if orientation is None or not np.all(np.isfinite(orientation[:2])):
        return np.rot90(data)
    (axis0, dir0), (axis1, dir1) = orientation[0], orientation[1]
    if axis0 < axis1:  # i -> columns, j -> rows
        shown, col_dir, row_dir = data.T, dir0, dir1
    else:  # i -> rows, j -> columns
        shown, col_dir, row_dir = data, dir1, dir0
    if col_dir > 0:
        shown = shown[:, ::-1]
    if row_dir > 0:
        shown = shown[::-1, :]
    return shown


def _decode_nifti(path: Path, frame: int | None, window: tuple[float, float] | None) -> Decoded:
    import nibabel

    try:
        volume = nibabel.load(str(path))
        shape = tuple(int(n) for n in volume.shape)
        if len(shape) < 2:
            raise DecodeError(f"NIfTI has shape {shape}, not an image")
        frames = shape[2] if len(shape) >= 3 else 1
        check_frame_pixels(shape[0], shape[1], "NIfTI volume")
        check_frames(frames, "NIfTI volume")
        index = check_frame(frames // 2 if frame is None else frame, frames, "NIfTI volume")
        slicer = (slice(None), slice(None)) + ((index,) if len(shape) >= 3 else ()) + (0,) * max(0, len(shape) - 3)
        data = np.asarray(volume.dataobj[slicer], dtype=np.float32)
        affine = volume.affine
    except DecodeError:
        raise
    except OverBudget as err:
        raise DecodeError(str(err)) from err
    except Exception as err:  # nibabel raises ImageFileError, EOFError, zlib errors ...
        raise DecodeError(f"cannot read NIfTI: {err}") from err
    image = _windowed(_display_slice(data, affine), window)
    return Decoded(np.ascontiguousarray(image), int(image.shape[1]), int(image.shape[0]), frames, index, "nifti")


def _windowed(data: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """A CT slice as uint8: the caller's window, else the lung window when the values look like HU
    (something below air's threshold), else the slice's own range (a mask or a rescaled export)."""
    if window is not None:
        return to_uint8(data, float(window[0]), float(window[1]))
    finite = data[np.isfinite(data)]
    looks_like_hu = finite.size and float(finite.min()) < _HU_AIR_THRESHOLD
    return to_uint8(data, *LUNG_WINDOW) if looks_like_hu else to_uint8(data)


# --- MetaImage ----------------------------------------------------------------------------


def _decode_metaimage(path: Path, frame: int | None, window: tuple[float, float] | None) -> Decoded:
    """One slice of a ``.mha`` (:mod:`covid19_images.imaging.metaimage`), windowed like a NIfTI slice."""
    from covid19_images.imaging.metaimage import read_slice

    try:
        data, index, frames = read_slice(path, frame)
    except OverBudget as err:
        raise DecodeError(str(err)) from err
    except IndexError as err:
        raise DecodeError(str(err)) from err
    except Exception as err:  # SimpleITK raises RuntimeError for every IO failure; MetaImageError
        raise DecodeError(f"cannot read MetaImage: {err}") from err
    image = _windowed(data, window)
    return Decoded(np.ascontiguousarray(image), int(image.shape[1]), int(image.shape[0]), frames, index, "metaimage")


# --- video ------------------------------------------------------------------------------


def _decode_video(path: Path, fmt: str, frame: int | None, count_frames: bool) -> Decoded:
    """One frame by seeking (:mod:`covid19_images.imaging.video`); the frame count comes from demuxing."""
    from covid19_images.imaging.video import read_video_frame

    target = frame or 0
    try:
        pixels, frames = read_video_frame(path, target)
    except OverBudget as err:
        raise DecodeError(str(err)) from err
    except IndexError as err:
        raise DecodeError(str(err)) from err
    except Exception as err:  # PyAV raises its own error tree
        raise DecodeError(f"cannot decode {fmt} video: {err}") from err
    height, width = pixels.shape[:2]
    return Decoded(pixels, int(width), int(height), frames if count_frames else 0, target, fmt)


# --- entry points -----------------------------------------------------------------------


def decode_file(
    path: str | Path,
    *,
    frame: int | None = 0,
    fmt: str | None = None,
    draft_size: tuple[int, int] | None = None,
    window: tuple[float, float] | None = None,
    count_frames: bool = False,
    threaded: bool = False,
) -> Decoded:
    """Decode one frame and report the file's geometry, opening the file once.

    ``frame=None`` picks the representative frame: the middle slice of a volume (NIfTI,
    multi-frame DICOM), the first frame of a video or animation. ``count_frames`` makes a
    video report its exact frame count (it demuxes the whole file); other formats always
    know theirs from the header.

    Args:
        path: the file; its format is sniffed from the bytes unless ``fmt`` names it.
        frame: frame / slice index, or None for the representative one.
        fmt: the format if already sniffed (:func:`~covid19_images.imaging.formats.sniff_format`).
        draft_size: let JPEG decode at a reduced scale of at least this ``(width, height)``.
        window: ``(low, high)`` in modality units (HU for CT) overriding a DICOM's or NIfTI's own window.
        count_frames: count a video's frames exactly (demuxes the whole file).
        threaded: the caller decodes in several threads at once: prefer decoders that release the
            GIL (Pillow's PNG over libspng's, which is faster on one core but serialises threads).
            The pixels are the same either way.

    Raises:
        DecodeError: the file is missing, not an image, or cannot be decoded; the message says why.
    """
    path = Path(path)
    if not path.is_file():
        raise DecodeError(f"file not found: {path}")
    kind = fmt or sniff_format(read_head(path))
    if kind in IMAGE_FORMATS:
        return _decode_pil(path, kind, frame, draft_size, threaded)
    if kind == "dicom":
        return decode_dicom(path, frame, window)
    if kind == "nifti":
        return _decode_nifti(path, frame, window)
    if kind == "metaimage":
        return _decode_metaimage(path, frame, window)
    if kind in VIDEO_FORMATS:
        return _decode_video(path, kind, frame, count_frames)
    if kind == "lfs-pointer":
        raise DecodeError(LFS_MESSAGE)
    if kind == "zip":
        raise DecodeError("file is a zip archive, not an image: unpack it first")
    if kind == "html":
        raise DecodeError("file is an HTML page, not an image (a failed download?)")
    raise DecodeError(f"unsupported or unrecognised format ({kind})")


def read_pixels(
    path: str | Path,
    *,
    frame: int = 0,
    fmt: str | None = None,
    draft_size: tuple[int, int] | None = None,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """Decode one 2-D image (or one slice/frame of a volume or video) to uint8 pixels.

    ``frame`` selects the slice of a NIfTI volume, the frame of a multi-frame DICOM, GIF,
    TIFF or video; a frame that does not exist is a :class:`DecodeError`. ``draft_size``
    lets JPEG decode at a reduced scale (at least that size). ``window`` = ``(low, high)``
    in modality units (HU for CT) overrides a DICOM's or NIfTI's own display window.
    """
    return decode_file(path, frame=frame, fmt=fmt, draft_size=draft_size, window=window).pixels
