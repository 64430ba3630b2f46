"""SIIM-FISABIO-RSNA: study/series/image DICOMs, one-hot study labels, boxes as label groups and quoted dicts."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pydicom

from covid19_images.core.pseudonyms import pseudonym
from covid19_images.sources.catalog.siim_covid19_detection.annotations import dict_boxes, label_boxes
from covid19_images.sources.catalog.siim_covid19_detection.annotations import read as read_annotations
from covid19_images.sources.parsing import SourceContext, list_files
from tests.conftest import run_parser
from tests.sources.catalog.portal import miniature_copy, portal_spec

SOURCE = "siim-covid19-detection"
#: rows in the exact shape of the real train_image_level.csv (its first rows' formats: two boxes with
#: 5-decimal floats, an integer coordinate, float noise in the label column, a row without boxes)
REAL_SHAPED = (
    "id,boxes,label,StudyInstanceUID\n"
    "000a312787f2_image,\"[{'x': 789.28836, 'y': 582.43035, 'width': 1026.65662, 'height': 1917.30292}, "
    "{'x': 2245.91208, 'y': 591.20528, 'width': 1094.66162, 'height': 1761.54944}]\","
    "opacity 1 789.28836 582.43035 1815.94498 2499.73327 "
    "opacity 1 2245.91208 591.20528 3340.5737 2352.75472,5776db0cec75\n"
    "000c3a3f293f_image,,none 1 0 0 1 1,ff0879eb20ed\n"
    "001398f4ff4f_image,\"[{'x': 2729, 'y': 2181.33331, 'width': 948.00012, 'height': 604}]\","
    "opacity 1 2729 2181.33331 3677.00012 2785.33331,28dddc8559b2\n"
    "00326161e51e_image,\"[{'x': 542.96057, 'y': 364.37257, 'width': 590.36261, 'height': 889.78085}]\","
    "opacity 1 542.96057 364.37257 1133.3231799999999 1254.15342,a81050391441\n"
)


def annotations_of(folder: Path):
    ctx = SourceContext(portal_spec(SOURCE), folder, list_files(folder))
    return list(read_annotations(ctx)), list(ctx.problems)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_miniature_entries_study_labels_patients_and_splits(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "siim")
    dicoms = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.dcm"))
    studies = {r["id"].removesuffix("_study"): r for r in csv_rows(folder / "train_study_level.csv")}
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert sorted(e.path for e in entries) == dicoms and not problems
    for entry in entries:
        header = pydicom.dcmread(folder / entry.path, stop_before_pixels=True)
        assert entry.patient_id == pseudonym(str(header.PatientID), SOURCE)
        split, study = entry.path.split("/")[:2]
        assert entry.official_split == split and entry.extra["study_uid"] == study
        if split == "test":
            assert entry.label == "unknown" and "study_label" not in entry.extra
            continue
        chosen = [k for k, v in studies[study].items() if v == "1"]
        assert entry.extra["study_label"] == chosen[0] and entry.label == "covid-19"


def test_miniature_boxes_are_the_label_column_and_findings_the_one_hot_columns(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "siim")
    by_stem = {p.stem: p.relative_to(folder).as_posix() for p in folder.rglob("train/*/*/*.dcm")}
    expected = Counter()
    for row in csv_rows(folder / "train_image_level.csv"):
        words = row["label"].split()
        for start in range(0, len(words), 6):
            if words[start] == "opacity" and row["id"][:-6] in by_stem:
                expected[(by_stem[row["id"][:-6]], tuple(float(w) for w in words[start + 2 : start + 6]))] += 1
    found, problems = annotations_of(folder)
    boxes = [a for a in found if a.kind == "box"]
    assert Counter((a.targets[0][1], a.box) for a in boxes) == expected and len(expected) >= 3
    assert {a.name for a in boxes} == {"lung_opacity"}
    assert [p.message for p in problems if "not in train/" in p.message]  # the row whose image is absent
    findings = [a for a in found if a.kind == "finding" and a.name != "opacity"]
    studies = {r["id"].removesuffix("_study"): r for r in csv_rows(folder / "train_study_level.csv")}
    for annotation in findings:
        study = annotation.targets[0][1].split("/")[1]
        column = next(k for k in studies[study] if k != "id" and k.lower().replace(" ", "_") == annotation.name)
        assert annotation.value == studies[study][column]
    assert len(findings) == 4 * len(by_stem)
    # the image-level target: one opacity finding per row whose image is here, 1 with boxes, 0 for "none"
    opacity = {a.targets[0][1]: a.value for a in found if a.kind == "finding" and a.name == "opacity"}
    rows = {r["id"][:-6]: r["label"] for r in csv_rows(folder / "train_image_level.csv") if r["id"][:-6] in by_stem}
    assert opacity == {by_stem[stem]: "1" if label.startswith("opacity") else "0" for stem, label in rows.items()}
    assert set(opacity.values()) == {"0", "1"}


def test_real_shaped_box_strings_give_the_corners_of_both_columns() -> None:
    rows = list(csv.DictReader(REAL_SHAPED.splitlines()))
    assert label_boxes(rows[0]["label"]) == [
        (789.28836, 582.43035, 1815.94498, 2499.73327),
        (2245.91208, 591.20528, 3340.5737, 2352.75472),
    ]
    assert label_boxes(rows[1]["label"]) == [] and dict_boxes(rows[1]["boxes"]) == []
    for row in rows:
        from_dicts, from_label = dict_boxes(row["boxes"]), label_boxes(row["label"])
        assert len(from_dicts) == len(from_label)
        for a, b in zip(from_dicts, from_label, strict=True):
            assert all(abs(p - q) < 1e-4 for p, q in zip(a, b, strict=True))
    assert label_boxes("opacity 1 10 10 5 5") is None  # not a box
    assert label_boxes("opacity 1 1 2 3") is None and dict_boxes("__import__('os')") is None


def test_bad_rows_are_reported_with_their_row_and_the_rest_joins(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "siim")
    labels = folder / "train_image_level.csv"
    lines = labels.read_text().splitlines(keepends=True)
    boxed = next(i for i, line in enumerate(lines) if "opacity" in line)
    lines[boxed] = lines[boxed].replace("opacity 1", "opacity 1 x", 1)
    labels.write_text("".join(lines))
    study_file = folder / "train_study_level.csv"
    study_lines = study_file.read_text().splitlines(keepends=True)
    study_lines[1] = study_lines[1].rsplit(",", 4)[0] + ",1,1,0,0\n"
    study_file.write_text("".join(study_lines))
    found, problems = annotations_of(folder)
    assert any("not opacity/none groups" in p.message and p.row for p in problems)
    assert any("study labels set to 1" in p.message for p in problems)
    assert [a for a in found if a.kind == "box"]
    entries, _ = run_parser(portal_spec(SOURCE), folder)
    assert len(entries) == len(list(folder.rglob("*.dcm")))
