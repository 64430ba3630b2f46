"""MedSeg CT volumes: LFS pointers in the real sample; the NIfTI path on volumes built here
from the real covid-19-pos-case DICOM slices (the MedSeg data itself is not obtainable)."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest

from covid19_images.core.schema import Entry, Problem
from covid19_images.imaging.decode import LUNG_WINDOW, read_pixels
from covid19_images.imaging.probe import probe_file
from tests.conftest import run_parser

SOURCE = "medseg-ct"
SAMPLE = "coyotespike-medseg_ct_dataset"
POS_CASE = "coyotespike-covid-19-pos-case/COVID-19-pos-case"


def run(registry, directory: Path) -> tuple[list[Entry], list[Problem]]:
    spec = registry[SOURCE]
    return run_parser(spec, directory)


def series_slices(shared: Path, series: int) -> list[pydicom.Dataset]:
    """The sample's slices of one axial series, ordered along z (head first)."""
    found = []
    for path in sorted((shared / POS_CASE).iterdir()):
        ds = pydicom.dcmread(path)
        if int(ds.SeriesNumber) == series:
            found.append(ds)
    return sorted(found, key=lambda ds: -float(ds.ImagePositionPatient[2]))


def hounsfield(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def volume_from_dicom(slices: list[pydicom.Dataset], *, flip_rows: bool) -> nibabel.Nifti1Image:
    """A NIfTI of the slices in HU (float64, as MedSeg ships), affine from the DICOM geometry.

    ``flip_rows=False`` stores voxel (i, j) = pixel (row j, column i) like a plain
    transpose; ``True`` reverses the rows the way dcm2niix does (j runs anterior).
    """
    first, last = slices[0], slices[-1]
    row_dir = np.array(first.ImageOrientationPatient[:3], float)
    col_dir = np.array(first.ImageOrientationPatient[3:], float)
    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    step = (np.array(last.ImagePositionPatient, float) - np.array(first.ImagePositionPatient, float)) / (
        len(slices) - 1
    )
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing
    lps[:3, 1] = col_dir * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = np.array(first.ImagePositionPatient, float)
    data = np.stack([hounsfield(ds).T for ds in slices], axis=-1)
    if flip_rows:
        data = data[:, ::-1, :]
        lps[:3, 3] = lps[:3, 3] + lps[:3, 1] * (first.Rows - 1)
        lps[:3, 1] = -lps[:3, 1]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return nibabel.Nifti1Image(data, ras)


@pytest.mark.upstream
def test_sample_is_lfs_pointers_only(shared: Path, registry) -> None:
    directory = shared / SAMPLE
    pointers = [
        p.relative_to(directory).as_posix()
        for p in sorted((directory / "dataset").glob("*.nii"))
        if p.read_bytes().startswith(b"version https://git-lfs.github.com/spec/")
    ]
    assert len(pointers) == 3
    entries, problems = run(registry, directory)
    assert entries == []
    assert sorted(p.path for p in problems) == pointers
    for problem in problems:
        assert "Git LFS pointer, not the data" in problem.message
        assert "`git lfs install && git lfs pull` in datasets/medseg-ct" in problem.message


@pytest.mark.upstream
def test_nifti_volumes_from_real_ct(shared: Path, registry, tmp_path: Path) -> None:
    train, test = series_slices(shared, 2), series_slices(shared, 4)
    assert len(train) >= 2 and len(test) >= 2
    dataset = tmp_path / "medseg" / "dataset"
    dataset.mkdir(parents=True)
    nibabel.save(volume_from_dicom(train, flip_rows=False), dataset / "tr_im.nii")
    image = nibabel.load(dataset / "tr_im.nii")
    mask = (np.asarray(image.dataobj) > -500).astype(np.uint8)
    nibabel.save(nibabel.Nifti1Image(mask, image.affine), dataset / "tr_mask.nii")
    nibabel.save(volume_from_dicom(test, flip_rows=True), dataset / "val_im.nii")

    entries, problems = run(registry, tmp_path / "medseg")
    assert not problems, [str(p) for p in problems]
    by_path = {e.path: e for e in entries}
    assert sorted(by_path) == ["dataset/tr_im.nii", "dataset/val_im.nii"]
    assert by_path["dataset/tr_im.nii"].extra == {"mask": "dataset/tr_mask.nii"}
    assert by_path["dataset/val_im.nii"].extra == {}
    assert {p: e.official_split for p, e in by_path.items()} == {
        "dataset/tr_im.nii": "train",
        "dataset/val_im.nii": "test",
    }
    assert {(e.modality, e.label, e.view) for e in entries} == {("ct", "covid-19", "axial")}

    low, high = LUNG_WINDOW
    for name, slices in (("tr_im.nii", train), ("val_im.nii", test)):
        facts = probe_file(dataset / name)
        assert (facts.format, facts.frames) == ("nifti", len(slices))
        assert (facts.width, facts.height) == (slices[0].Columns, slices[0].Rows)
        for k, ds in enumerate(slices):
            expected = np.clip((hounsfield(ds) - low) * 255.0 / (high - low), 0, 255).astype(np.uint8)
            shown = read_pixels(dataset / name, frame=k)
            assert shown.shape == expected.shape
            assert np.abs(shown.astype(int) - expected).max() <= 1, f"{name} slice {k} is not the DICOM slice"
            # and it matches the DICOM reader given the same window
            dicom_path = next(
                p for p in (shared / POS_CASE).iterdir() if pydicom.dcmread(p).SOPInstanceUID == ds.SOPInstanceUID
            )
            assert np.abs(read_pixels(dicom_path, window=LUNG_WINDOW).astype(int) - shown).max() <= 1


@pytest.mark.upstream
def test_mask_with_other_shape_is_not_linked(shared: Path, registry, tmp_path: Path) -> None:
    dataset = tmp_path / "medseg" / "dataset"
    dataset.mkdir(parents=True)
    nibabel.save(volume_from_dicom(series_slices(shared, 2), flip_rows=False), dataset / "tr_im.nii")
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 1), np.uint8), np.eye(4)), dataset / "tr_mask.nii")
    (dataset / "val_im.nii").write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 20971872\n")
    entries, problems = run(registry, tmp_path / "medseg")
    assert [(e.path, e.extra) for e in entries] == [("dataset/tr_im.nii", {})]
    assert sorted((p.path, "shape" in p.message, "git lfs pull" in p.message) for p in problems) == [
        ("dataset/tr_mask.nii", True, False),
        ("dataset/val_im.nii", False, True),
    ]
