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


IEEE = "ieee8023-covid-chestxray-dataset"
BOXES = "annotations/imageannotation_ai_lung_bounding_boxes.json"


def _ieee_copy(shared: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "ieee"
    shutil.copytree(shared / IEEE, copy, symlinks=True)
    return copy


@pytest.mark.upstream
def test_a_deeply_nested_coco_file_is_one_problem_and_the_other_annotations_stay(
    shared: Path, registry, tmp_path: Path
) -> None:
    source = "ieee8023-covid-chestxray"
    before, _ = read_all(registry, source, shared / IEEE, "ieee8023_covid_chestxray")
    copy = _ieee_copy(shared, tmp_path)
    (copy / BOXES).write_bytes(b'{"images": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    items, problems = read_all(registry, source, copy, "ieee8023_covid_chestxray")
    assert [(i.kind, i.path) for i in items] == [(i.kind, i.path) for i in before if i.kind != "box"]
    assert any(i.kind == "box" for i in before) and items
    about = [p for p in problems if p.path == BOXES]
    assert len(about) == 1 and "JSON nested too deeply" in about[0].message


@pytest.mark.upstream
def test_boxes_outside_their_image_or_with_text_coordinates_are_reported(
    shared: Path, registry, tmp_path: Path
) -> None:
    import json

    source = "ieee8023-covid-chestxray"
    copy = _ieee_copy(shared, tmp_path)
    before, _ = read_all(registry, source, copy, "ieee8023_covid_chestxray")
    data = json.loads((copy / BOXES).read_text())
    boxes = data["annotations"]
    assert len(boxes) >= 3
    image = {i["id"]: i for i in data["images"]}[boxes[0]["image_id"]]
    boxes[0]["bbox"] = [image["width"] - 10, 5, 50, 50]  # runs 40 pixels past the right edge
    boxes[1]["bbox"] = ["10", "10", "20", "20"]  # COCO coordinates are numbers
    boxes[2]["image_id"] = [boxes[2]["image_id"]]  # names no image (and is not a key at all)
    (copy / BOXES).write_text(json.dumps(data))
    items, problems = read_all(registry, source, copy, "ieee8023_covid_chestxray")
    kept = [i.row for i in items if i.kind == "box"]
    assert len(kept) == sum(i.kind == "box" for i in before) - 3
    reasons = {p.row: p.message for p in problems if p.path == BOXES}
    assert "lies outside its" in reasons[f"{BOXES} annotation id {boxes[0]['id']}"]
    assert "no usable coordinates" in reasons[f"{BOXES} annotation id {boxes[1]['id']}"]
    assert "names no image" in reasons[f"{BOXES} annotation id {boxes[2]['id']}"]


@pytest.mark.upstream
def test_a_lungvae_mask_with_values_other_than_0_and_255_is_not_joined(shared: Path, registry, tmp_path: Path) -> None:
    from PIL import Image

    source = "ieee8023-covid-chestxray"
    copy = _ieee_copy(shared, tmp_path)
    before, _ = read_all(registry, source, copy, "ieee8023_covid_chestxray")
    masks = sorted(i.path for i in before if i.kind == "mask")
    assert masks
    pixels = np.asarray(Image.open(copy / masks[0])).copy()
    pixels[: pixels.shape[0] // 2] //= 2  # 255 -> 127: a soft mask, not lungVAE's binary one
    Image.fromarray(pixels).save(copy / masks[0])
    items, problems = read_all(registry, source, copy, "ieee8023_covid_chestxray")
    assert sorted(i.path for i in items if i.kind == "mask") == masks[1:]
    assert any(p.path == masks[0] and "are not lungVAE's 0 (background) / 255 (lung)" in p.message for p in problems)


@pytest.mark.upstream
@pytest.mark.parametrize("bad", [1.4, 7.0])
def test_medseg_values_that_are_not_its_classes_are_not_rounded_into_one(
    shared: Path, registry, tmp_path: Path, bad: float
) -> None:
    slices = series_slices(shared, 2)
    dataset = tmp_path / "medseg" / "dataset"
    dataset.mkdir(parents=True)
    image = volume_from_dicom(slices, flip_rows=False)
    nibabel.save(image, dataset / "tr_im.nii")
    mask = np.zeros(image.shape, dtype=np.float64)
    mask[10:20, 10:20, 1] = 1
    mask[30:40, 30:40, 0] = bad  # rounds to ground-glass (1.4) or names no class (7)
    nibabel.save(nibabel.Nifti1Image(mask, image.affine), dataset / "tr_mask.nii")
    annotations, problems = read_all(registry, "medseg-ct", tmp_path / "medseg", "medseg_ct")
    assert annotations == []
    assert len(problems) == 1 and f"mask values {bad:g} are not MedSeg classes" in problems[0].message


@pytest.mark.parametrize(
    ("raw", "top", "integer", "expected"),
    [
        ("2", 3, True, 2.0),
        ("0", 3, True, 0.0),
        ("3.3333", 6, False, 3.3333),
        ("18", 18, True, 18.0),
        ("1_0", 18, True, None),  # float() reads ten
        ("1e1", 18, True, None),
        ("\uff13", 3, True, None),  # a full-width 3
        ("nan", 6, False, None),
        ("inf", 6, False, None),
        ("-0", 3, True, None),
        ("2.5", 3, True, None),
        ("4", 3, True, None),
        ("", 3, True, None),
    ],
)
def test_a_score_is_a_plain_decimal_within_its_documented_range(raw, top, integer, expected) -> None:
    from covid19_images.core.annotation import score_in_range

    assert score_in_range(raw, top, integer=integer) == expected
