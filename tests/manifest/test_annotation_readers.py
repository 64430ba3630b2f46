"""Per-source annotation readers: MedSeg lesion masks (NIfTI from real DICOM), POCUS findings."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pytest

from covid19_images.core.annotation import Annotation
from covid19_images.core.schema import Problem
from covid19_images.sources.parsing import SourceContext, list_files
from tests.conftest import csv_rows_with_lines
from tests.sources.catalog.test_medseg_ct import series_slices, volume_from_dicom


def read_all(registry, source: str, directory: Path, module: str) -> tuple[list[Annotation], list[Problem]]:
    import importlib

    read = importlib.import_module(f"covid19_images.sources.catalog.{module}.annotations").read
    ctx = SourceContext(registry[source], directory, list_files(directory))
    items = list(read(ctx))
    assert all(isinstance(i, Annotation) for i in items), "read() yields Annotation rows only"
    return items, list(ctx.problems)


@pytest.mark.upstream
def test_medseg_mask_slices_become_lesion_annotations(shared: Path, registry, tmp_path: Path) -> None:
    slices = series_slices(shared, 2)
    dataset = tmp_path / "medseg" / "dataset"
    dataset.mkdir(parents=True)
    image = volume_from_dicom(slices, flip_rows=False)
    nibabel.save(image, dataset / "tr_im.nii")
    # MedSeg's classes: 1 ground-glass, 2 consolidation, 3 pleural effusion; slice 0 stays empty
    mask = np.zeros(image.shape, dtype=np.float64)  # MedSeg ships float64 masks
    mask[10:20, 10:20, 1] = 1
    mask[30:40, 30:40, 1] = 3
    mask[5:9, 5:9, -1] = 2
    nibabel.save(nibabel.Nifti1Image(mask, image.affine), dataset / "tr_mask.nii")

    annotations, problems = read_all(registry, "medseg-ct", tmp_path / "medseg", "medseg_ct")
    assert not problems, [str(p) for p in problems]
    found = {(a.frame, a.name, a.value) for a in annotations}
    last = len(slices) - 1
    expected = {(1, "ground_glass", "1"), (1, "pleural_effusion", "3"), (last, "consolidation", "2")}
    expected |= {(k, "no_lesion", "0") for k in range(len(slices)) if k not in (1, last)}
    assert found == expected
    assert {a.targets[0] for a in annotations} == {("", "dataset/tr_im.nii")}
    assert {a.path for a in annotations} == {"dataset/tr_mask.nii"}


@pytest.mark.upstream
def test_medseg_mask_of_another_shape_is_reported(shared: Path, registry, tmp_path: Path) -> None:
    slices = series_slices(shared, 2)
    dataset = tmp_path / "medseg" / "dataset"
    dataset.mkdir(parents=True)
    image = volume_from_dicom(slices, flip_rows=False)
    nibabel.save(image, dataset / "tr_im.nii")
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 2), np.uint8), image.affine), dataset / "tr_mask.nii")
    annotations, problems = read_all(registry, "medseg-ct", tmp_path / "medseg", "medseg_ct")
    assert annotations == []
    assert len(problems) == 1 and "is not the image's" in problems[0].message


@pytest.mark.upstream
def test_pocus_findings_carry_the_sheet_values(shared: Path, registry) -> None:
    directory = shared / "jannisborn-covid19_ultrasound"
    annotations, _problems = read_all(registry, "pocus-ultrasound", directory, "pocus_ultrasound")
    assert annotations
    rows = dict(csv_rows_with_lines(directory / "data/dataset_metadata.csv"))
    columns = {
        "b_lines": "B-lines",
        "a_lines": "A-lines",
        "consolidation": "Consolidations",
        "pleural_effusion": "Effusion",
        "pleural_line_irregularities": "Pleural line irregularities",
        "air_bronchogram": "Air bronchogram",
        "healthy": "Healthy",
    }
    for annotation in annotations:
        line = int(annotation.row.rsplit(" ", 1)[1])
        assert rows[line][columns[annotation.name]] == annotation.value
        assert (directory / annotation.targets[0][1]).is_file()
    assert {a.value for a in annotations} == {"0", "1"}
    assert {a.kind for a in annotations} == {"finding"}
