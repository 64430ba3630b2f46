"""RSNA Pneumonia Detection Challenge: one row per box, Target 0 rows, class strings, the NIH link."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pydicom

from covid19_images.sources.catalog.rsna_pneumonia.annotations import read as read_boxes
from covid19_images.sources.parsing import SourceContext, list_files
from tests.conftest import run_parser
from tests.sources.catalog.portal import PORTAL, miniature_copy, needs_portal, portal_spec, tiny_dicom

SOURCE = "rsna-pneumonia"
CLASS_LABEL = {"Normal": "normal", "Lung Opacity": "pneumonia", "No Lung Opacity / Not Normal": "other"}


def label_rows(folder: Path) -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with open(folder / "stage_2_train_labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["patientId"]].append(row)
    return rows


def classes(folder: Path) -> dict[str, str]:
    with open(folder / "stage_2_detailed_class_info.csv", newline="") as handle:
        return {row["patientId"]: row["class"] for row in csv.DictReader(handle)}


def boxes_of(folder: Path):
    ctx = SourceContext(portal_spec(SOURCE), folder, list_files(folder))
    return list(read_boxes(ctx)), list(ctx.problems)


def test_miniature_one_entry_per_image_with_class_view_and_boxes(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "rsna")
    rows, klass = label_rows(folder), classes(folder)
    images = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.dcm"))
    assert any(len(r) >= 3 for r in rows.values()) and any(r[0]["Target"] == "0" for r in rows.values())

    entries, problems = run_parser(portal_spec(SOURCE), folder)

    assert sorted(e.path for e in entries) == images
    mapping = {i["subset_img_id"]: i["img_id"] for i in json.loads(next(folder.glob("*mappings*.json")).read_text())}
    for entry in entries:
        patient = Path(entry.path).stem
        header = pydicom.dcmread(folder / entry.path, stop_before_pixels=True)
        assert entry.view == header.ViewPosition and entry.sex == header.PatientSex
        assert entry.age == float(header.PatientAge)  # RSNA writes a bare number, no "Y"
        assert entry.extra["covidx_name"] == f"{patient}.png"
        if entry.path.startswith("stage_2_test_images/"):
            assert (entry.label, entry.official_split) == ("unknown", "test")
            continue
        assert entry.label == CLASS_LABEL[klass[patient]] and entry.official_split == "train"
        assert entry.extra["boxes"] == sum(r["Target"] == "1" for r in rows[patient])
        if patient in mapping:
            assert entry.extra["same_as"] == [f"nih-chestxray14-sample:{mapping[patient]}"]
            assert entry.patient_id == "nih-" + mapping[patient].split("_")[0]
        else:
            assert entry.patient_id == patient and "same_as" not in entry.extra
    unimaged = set(rows) - {Path(p).stem for p in images}
    assert unimaged and any(next(iter(unimaged)) in p.message for p in problems)


def test_miniature_boxes_are_the_target_1_rows_as_corners(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "rsna")
    expected = Counter()
    for patient, rows in label_rows(folder).items():
        for r in rows:
            if r["Target"] == "1":
                x, y, w, h = (float(r[k]) for k in ("x", "y", "width", "height"))
                expected[(f"stage_2_train_images/{patient}.dcm", (x, y, x + w, y + h))] += 1
    boxes, problems = boxes_of(folder)
    assert Counter((b.targets[0][1], b.box) for b in boxes) == expected and not problems
    assert {(b.kind, b.name) for b in boxes} == {("box", "lung_opacity")}


def test_disagreeing_class_bad_box_and_broken_mapping_are_reported_not_fatal(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "rsna")
    rows = label_rows(folder)
    normal = next(p for p, r in rows.items() if r[0]["Target"] == "0" and classes(folder)[p] == "Normal")
    boxed = next(p for p, r in rows.items() if r[0]["Target"] == "1")
    text = (folder / "stage_2_train_labels.csv").read_text()
    text = text.replace(f"{normal},,,,,0", f"{normal},,,,,1", 1)  # Target 1 but class Normal, no box
    (folder / "stage_2_train_labels.csv").write_text(text)
    next(folder.glob("*mappings*.json")).write_text("{not json")

    entries, problems = run_parser(portal_spec(SOURCE), folder)
    messages = [str(p) for p in problems]
    assert any("disagrees with Target 1" in m for m in messages)
    assert any("NIH mapping unusable" in m for m in messages)
    assert not any("same_as" in e.extra for e in entries)
    assert len(entries) == len(list(folder.rglob("*.dcm")))
    boxes, box_problems = boxes_of(folder)
    assert any("without a numeric box" in str(p) for p in box_problems)
    assert {b.targets[0][1] for b in boxes} >= {f"stage_2_train_images/{boxed}.dcm"}


def test_a_damaged_dicom_is_reported_by_name_and_skipped(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "rsna")
    victim = sorted(folder.glob("stage_2_train_images/*.dcm"))[0]
    victim.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert victim.relative_to(folder).as_posix() not in {e.path for e in entries}
    assert any(p.path == victim.relative_to(folder).as_posix() and "DICOM header" in p.message for p in problems)


@needs_portal
def test_real_labels_every_patient_one_entry_boxes_counted_from_the_file(tmp_path: Path) -> None:
    real = PORTAL / "rsna-pneumonia-detection-challenge"
    folder = tmp_path / "rsna"
    folder.mkdir()
    for name in ("stage_2_train_labels.csv", "stage_2_detailed_class_info.csv", "stage_2_sample_submission.csv"):
        shutil.copy(real / name, folder / name)
    rows, klass = label_rows(folder), classes(folder)
    for patient in rows:
        tiny_dicom(folder / "stage_2_train_images" / f"{patient}.dcm", Modality="CR", ViewPosition="PA")

    entries, problems = run_parser(portal_spec(SOURCE), folder)

    assert len(entries) == len(rows)  # one per image, not one per box row
    assert sum(len(r) for r in rows.values()) > len(rows)
    got = {Path(e.path).stem: e for e in entries}
    assert Counter(e.label for e in entries) == Counter(CLASS_LABEL[klass[p]] for p in rows)
    assert all(got[p].extra["boxes"] == sum(r["Target"] == "1" for r in rows[p]) for p in rows)
    assert not [p for p in problems if p.level == "error"]
    boxes, box_problems = boxes_of(folder)
    assert len(boxes) == sum(r["Target"] == "1" for rs in rows.values() for r in rs) and not box_problems


@needs_portal
def test_real_sample_submission_is_crlf_and_names_test_ids_outside_the_training_labels() -> None:
    raw = (PORTAL / "rsna-pneumonia-detection-challenge" / "stage_2_sample_submission.csv").read_bytes()
    assert b"\r\n" in raw
    tests = {line.split(b",")[0].decode() for line in raw.splitlines()[1:]}
    assert not tests & set(label_rows(PORTAL / "rsna-pneumonia-detection-challenge"))
