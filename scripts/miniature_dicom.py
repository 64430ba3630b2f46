"""covid-19-pos-case miniature: the real study's DICOM header structure around synthetic pixels.

The upstream repository is released under The Unlicense, but its README says the origin of the
files is unknown (a patient CT study; the headers name a hospital code): nobody can say the
uploader could waive the rights, nor that the patient consented to publication. So no real
pixel is embedded. Each of the sample's 19 files keeps its header structure (series, instance
numbers, orientation, positions, rescale, window, padding value, image type, UIDs), with every
identifying value replaced by an obviously synthetic one, private tags removed, the matrix
downscaled by 4 (localizer 8; pixel spacing scaled to match) and the pixels replaced by a phantom in
Hounsfield units. Two deviations, so the miniature holds every DICOM path the reader has: the
reformat series (601/603/605) are stored RLE Lossless (a compressed transfer syntax) and the
localizer is stored MONOCHROME1.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import RLELossless

FACTOR = 4  # 512 -> 128: small, yet smooth enough that lossy re-encodes stay close (tests check that)
LOCALIZER_FACTOR = 8
SYNTHETIC_VALUES = {
    "PatientID": "SYNTHETIC-PATIENT-0001",
    "InstitutionName": "Synthetic Institution for Tests",
    "InstitutionAddress": "1 Synthetic Street, Nowhere",
    "StationName": "SYNTHSTATION01",
    "StudyID": "SYNTH-STUDY-0001",
    "AccessionNumber": "SYNTHACCESSION01",
    "DeviceSerialNumber": "SYNTHETIC-SERIAL-01",
}


def phantom(rows: int, columns: int, seed: int, localizer: bool) -> np.ndarray:
    """Hounsfield units of an invented thorax slice (or a frontal projection for the localizer)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    u, v = x / (columns - 1) - 0.5, y / (rows - 1) - 0.5
    hu = np.full((rows, columns), -1000.0)
    body = (u / 0.44) ** 2 + (v / (0.46 if localizer else 0.34)) ** 2 < 1
    hu[body] = 40
    for side in (-1, 1):
        lung = ((u - side * (0.18 + 0.02 * rng.random())) / 0.13) ** 2 + ((v + 0.02) / 0.24) ** 2 < 1
        hu[lung] = -850 + 60 * rng.random()
    spine = (u / 0.05) ** 2 + ((v - (0.0 if localizer else 0.22)) / (0.4 if localizer else 0.05)) ** 2 < 1
    hu[spine] = 700
    opacity = ((u - 0.15 * rng.standard_normal()) / 0.06) ** 2 + ((v - 0.1 * rng.standard_normal()) / 0.06) ** 2 < 1
    hu[opacity & body] = -300  # a ground-glass patch
    return _box_blur(hu, 2) + 2 * rng.standard_normal(hu.shape) * body


def _box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Soft organ borders, as a reconstructed CT has (hard phantom edges defeat lossy codecs)."""
    kernel = np.ones(2 * radius + 1) / (2 * radius + 1)
    for axis in (0, 1):
        padded = np.pad(values, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        values = np.apply_along_axis(lambda line: np.convolve(line, kernel, "valid"), axis, padded)
    return values


def anonymise(ds: pydicom.Dataset) -> None:
    ds.remove_private_tags()
    for element in ds.iterall():
        if element.VR == "PN" and str(element.value or "").strip():
            element.value = "Synthfamily^Synthgiven"
        elif element.VR == "DA" and element.value:
            element.value = "20200101"
        elif element.VR == "DT" and element.value:
            element.value = "20200101120000"
    for keyword, value in SYNTHETIC_VALUES.items():
        if str(ds.get(keyword, "") or "").strip():
            setattr(ds, keyword, value)


def build_pos_case(sample: Path, out: Path) -> list[tuple[str, str]]:
    """Write the miniature; return (file, why) for SYNTHETIC.md."""
    (out / "COVID-19-pos-case").mkdir(parents=True, exist_ok=True)
    for text in ("README.md", "LICENSE"):
        shutil.copyfile(sample / text, out / text)
    notes = []
    for index, path in enumerate(sorted((sample / "COVID-19-pos-case").iterdir())):
        ds = pydicom.dcmread(path)
        dtype = ds.pixel_array.dtype
        anonymise(ds)
        localizer = "LOCALIZER" in list(ds.ImageType)
        factor = LOCALIZER_FACTOR if localizer else FACTOR
        rows, columns = max(8, ds.Rows // factor), max(8, ds.Columns // factor)
        hu = phantom(rows, columns, index, localizer)
        stored = (hu - float(ds.RescaleIntercept)) / float(ds.RescaleSlope)
        padding = ds.get("PixelPaddingValue")
        if padding is not None:  # outside the reconstruction circle, as the scanner writes it
            y, x = np.mgrid[0:rows, 0:columns]
            outside = (x - (columns - 1) / 2) ** 2 + (y - (rows - 1) / 2) ** 2 > (min(rows, columns) / 2) ** 2
            stored[outside] = padding
        info = np.iinfo(dtype)
        stored = np.clip(np.round(stored), info.min, info.max).astype(dtype)
        ds.Rows, ds.Columns = rows, columns
        if "PixelSpacing" in ds:
            ds.PixelSpacing = [f"{float(v) * factor:.6g}" for v in ds.PixelSpacing]
        why = "origin unknown (README): header structure kept, identifying values replaced, phantom pixels"
        if localizer:
            ds.PhotometricInterpretation = "MONOCHROME1"
            stored = (int(stored.max()) + int(stored.min()) - stored.astype(np.int64)).astype(dtype)
            why += "; stored MONOCHROME1 (upstream: MONOCHROME2)"
        ds.PixelData = stored.tobytes()
        if "REFORMATTED" in list(ds.ImageType):
            ds.compress(RLELossless, stored, generate_instance_uid=False)
            why += "; stored RLE Lossless (upstream: Explicit VR Little Endian)"
        relative = f"COVID-19-pos-case/{path.name}"
        ds.save_as(out / relative, enforce_file_format=True)
        notes.append((relative, why))
    lines = [
        "# Synthetic files in this miniature",
        "",
        (__doc__ or "").strip(),
        "",
        "| file | why synthetic |",
        "|---|---|",
        *(f"| `{name}` | {why} |" for name, why in notes),
    ]
    (out / "SYNTHETIC.md").write_text("\n".join(lines) + "\n")
    return notes


def _series(directory: Path, number: int) -> list[pydicom.Dataset]:
    found = [ds for ds in map(pydicom.dcmread, sorted(directory.iterdir())) if int(ds.SeriesNumber) == number]
    return sorted(found, key=lambda ds: -float(ds.ImagePositionPatient[2]))


def _volume(slices: list[pydicom.Dataset], step: int = 2):
    """A MedSeg-style NIfTI (HU, one axial slice per z) of ``slices``, every ``step``-th pixel,
    affine from the DICOM geometry (LPS -> RAS)."""
    import nibabel

    first, last = slices[0], slices[-1]
    row_dir = np.array(first.ImageOrientationPatient[:3], float)
    col_dir = np.array(first.ImageOrientationPatient[3:], float)
    row_spacing, col_spacing = (float(v) * step for v in first.PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1] = row_dir * col_spacing, col_dir * row_spacing
    lps[:3, 2] = (np.array(last.ImagePositionPatient, float) - np.array(first.ImagePositionPatient, float)) / max(
        len(slices) - 1, 1
    )
    lps[:3, 3] = np.array(first.ImagePositionPatient, float)
    hu = [(ds.pixel_array[::step, ::step] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)) for ds in slices]
    data = np.stack([np.maximum(s, -1024).astype(np.float32).T for s in hu], axis=-1)
    return nibabel.Nifti1Image(data, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps)


def build_medseg_resolved(pos_case: Path, out: Path) -> list[tuple[str, str]]:
    """MedSeg as a clone *with* git-lfs would hold it: real NIfTI volumes under the pointer names.

    The MedSeg volumes are not obtainable (only their LFS pointers are), so these stand-ins are
    built from the synthetic pos-case slices above: ``tr_im.nii`` from axial series 2 with a
    ``tr_mask.nii`` of the body, ``val_im.nii`` from series 4. Float32, 64x64 (MedSeg: float64
    512x512). ``.gitattributes`` is left out so the mirror stores the volumes as plain blobs.
    """
    import nibabel

    dataset = out / "dataset"
    dataset.mkdir(parents=True, exist_ok=True)
    train = _volume(_series(pos_case, 2))
    nibabel.save(train, dataset / "tr_im.nii")
    mask = (np.asarray(train.dataobj) > -500).astype(np.uint8)
    nibabel.save(nibabel.Nifti1Image(mask, train.affine), dataset / "tr_mask.nii")
    nibabel.save(_volume(_series(pos_case, 4)), dataset / "val_im.nii")
    why = "MedSeg volumes not obtainable; built from the synthetic pos-case series (see scripts/miniature_dicom.py)"
    return [(f"lfs-resolved/dataset/{name}", why) for name in ("tr_im.nii", "tr_mask.nii", "val_im.nii")]
