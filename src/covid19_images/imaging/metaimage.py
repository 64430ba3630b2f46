"""MetaImage (``.mha``) through SimpleITK: one slice for the 2-D path, the whole volume for ``volumes=True``.

STOIC2021 ships its 2,000 CT volumes as ``.mha`` (a text header, ``ElementDataFile = LOCAL``,
then the voxels, often zlib-compressed). SimpleITK's ITK MetaImage IO reads them; this module
puts the budgets of :mod:`covid19_images.imaging.budget` in front of it and keeps the file
inside its folder:

* the header is parsed here first (a few KiB of ``key = value`` text, bounded): only a
  header whose ``ElementDataFile`` is ``LOCAL`` is read. A detached ``.mhd`` header names
  another file (``../../elsewhere.raw``, or a list of slice files); following it would let
  metadata reach outside the source folder, so it is refused with that reason;
* ``DimSize`` is checked against the pixel and frame budgets before SimpleITK allocates
  anything (``ReadImageInformation`` reads only the header); an over-budget file is an
  :class:`~covid19_images.imaging.budget.OverBudget`;
* one slice is read with ITK's streaming extraction (``SetExtractIndex``/``SetExtractSize``),
  so the 2-D path does not decode a 500-slice volume to show its middle slice.

SimpleITK is driven from one thread at a time (a process-wide lock): reading images concurrently
from several threads can crash the process (SimpleITK issue #74, open) and, in ITK's MetaImage
reader, deadlock (SimpleITK pull request #2713); a sync probes files from a thread pool, and a
CT set holds few ``.mha`` files, so the lock costs nothing measurable.

Arrays come out ``(z, y, x)`` as ``sitk.GetArrayFromImage`` gives them: for the LPS-oriented
axial CT STOIC holds, row = anterior -> posterior and column = patient right -> left, which
is how a DICOM viewer shows an axial slice (the DICOM reader's orientation). Values are the
stored HU; spacing ``(z, y, x)`` in mm from the header.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from covid19_images.imaging.budget import check_frame_pixels, check_frames

if TYPE_CHECKING:  # numpy only where pixels are read: format sniffing (imaging.formats) imports this module
    import numpy as np

#: how much header text is read before giving up on finding ``ElementDataFile``
MAX_HEADER_BYTES = 64 * 1024
#: the first header keys a MetaImage file may start with (ITK writes ``ObjectType`` first)
HEADER_KEYS = (b"ObjectType", b"NDims", b"ObjectSubType", b"Comment", b"TransformType")


#: held around every SimpleITK call (see the module's docstring)
_SIMPLEITK = threading.Lock()


class MetaImageError(ValueError):
    """A MetaImage file this reader refuses (not LOCAL, malformed header); the message says why."""


def looks_like_metaimage(head: bytes) -> bool:
    """True when ``head`` starts with a MetaImage header line (``ObjectType = Image``, ``NDims = 3``)."""
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
    key = first.split(b"=", 1)[0].strip()
    return b"=" in first and key in HEADER_KEYS


def read_header(path: Path) -> dict[str, str]:
    """The ``key = value`` lines up to ``ElementDataFile`` (the last header key), within :data:`MAX_HEADER_BYTES`."""
    header: dict[str, str] = {}
    with open(path, "rb") as handle:
        raw = handle.read(MAX_HEADER_BYTES)
    for line in raw.split(b"\n"):
        key, sep, value = line.partition(b"=")
        if not sep:
            raise MetaImageError(f"MetaImage header line {line[:40]!r} is not `key = value`")
        name = key.strip().decode("ascii", "replace")
        header[name] = value.strip().decode("utf-8", "replace")
        if name == "ElementDataFile":
            return header
    raise MetaImageError(f"no ElementDataFile in the first {MAX_HEADER_BYTES:,} bytes: not a MetaImage file")


def checked_size(path: Path) -> tuple[int, ...]:
    """``DimSize`` as ``(x, y, z)``, after refusing a detached header and an over-budget size."""
    header = read_header(path)
    if header.get("ElementDataFile", "").upper() != "LOCAL":
        raise MetaImageError(
            f"ElementDataFile = {header.get('ElementDataFile')!r}: the voxels are in another file; only a "
            "single-file .mha (ElementDataFile = LOCAL) is read, so metadata never names a file outside its folder"
        )
    try:
        size = tuple(int(v) for v in header.get("DimSize", "").split())
        dims = int(header.get("NDims", len(size)))
    except ValueError as err:
        raise MetaImageError(f"MetaImage DimSize/NDims not whole numbers: {err}") from err
    if dims not in (2, 3) or len(size) != dims:
        raise MetaImageError(f"MetaImage with NDims {dims} and DimSize {size}: only 2-D and 3-D images are read")
    check_frame_pixels(size[0], size[1], "MetaImage volume")
    check_frames(size[2] if dims == 3 else 1, "MetaImage volume")
    return size


def _reader(path: Path):
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO("MetaImageIO")
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return sitk, reader


def read_slice(path: Path, frame: int | None) -> tuple[np.ndarray, int, int]:
    """``(slice (y, x) float32, index read, frame count)``; the middle slice when ``frame`` is None."""
    size = checked_size(path)
    frames = size[2] if len(size) == 3 else 1
    index = frames // 2 if frame is None else int(frame)
    if not 0 <= index < frames:
        raise IndexError(f"MetaImage volume has {frames} frame(s); frame {index} does not exist")
    import numpy as np

    with _SIMPLEITK:
        sitk, reader = _reader(path)
        if tuple(int(n) for n in reader.GetSize()) != size:
            raise MetaImageError(f"SimpleITK reads DimSize {reader.GetSize()}, the header says {size}")
        if len(size) == 3:
            reader.SetExtractIndex([0, 0, index])
            reader.SetExtractSize([size[0], size[1], 0])  # 0 collapses z: a 2-D image of one slice
        image = reader.Execute()
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise MetaImageError("MetaImage with vector pixels: not a CT volume")
        return sitk.GetArrayFromImage(image).astype(np.float32, copy=False), index, frames


def read_volume(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Volume ``(z, y, x)`` float32 and spacing ``(z, y, x)`` mm, budgets checked before reading the voxels."""
    path = Path(path)
    size = checked_size(path)
    import numpy as np

    with _SIMPLEITK:
        sitk, reader = _reader(path)
        if tuple(int(n) for n in reader.GetSize()) != size:
            raise MetaImageError(f"SimpleITK reads DimSize {reader.GetSize()}, the header says {size}")
        image = reader.Execute()
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise MetaImageError("MetaImage with vector pixels: not a CT volume")
        array = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
        spacing = tuple(float(s) for s in image.GetSpacing())
    if array.ndim == 2:
        array, spacing = array[None], (*spacing, 1.0)
    return np.ascontiguousarray(array), (spacing[2], spacing[1], spacing[0])
