"""Figure1 COVID-19 X-rays: metadata without a file-name column, letter-suffixed patient ids."""

from __future__ import annotations

import string
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from covid19_images.core.schema import Entry, Problem
from tests.conftest import csv_rows_with_lines, run_parser

SOURCE = "figure1-xray"
SAMPLE = "agchung-Figure1-COVID-chestxray-dataset"
LABELS = {"COVID-19": "covid-19", "No finding": "normal", "Pneumonia": "pneumonia", "": "unknown"}
VIEWS = {"AP erect": "AP", "AP": "AP", "PA": "PA", "": "unknown"}
HEADER = (
    "patientid,offset,sex,age,finding,survival,temperature,pO2 saturation,view,modality,artifacts/distortion,notes\n"
)


def run(registry, directory: Path) -> tuple[list[Entry], list[Problem]]:
    spec = registry[SOURCE]
    return run_parser(spec, directory)


def image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), 90).save(path, "PNG" if path.suffix.lower() == ".png" else "JPEG")


def bad_utf8_lines(metadata: Path) -> list[int]:
    """Physical lines that are not UTF-8 (Figure1's file has cp1252 bytes such as ``38\xb0``)."""
    bad = []
    for number, line in enumerate(metadata.read_bytes().splitlines(), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(number)
    return bad


@pytest.mark.upstream
def test_sample_rows_images_labels_patients(shared: Path, registry) -> None:
    directory = shared / SAMPLE
    stems = {p.stem: p for p in (directory / "images").iterdir() if p.suffix.lower() in {".jpg", ".png"}}
    rows = csv_rows_with_lines(directory / "metadata.csv", "cp1252")
    present = [(line, row) for line, row in rows if row["patientid"] in stems]
    absent = [(line, row) for line, row in rows if row["patientid"] not in stems]
    assert present and absent

    entries, problems = run(registry, directory)

    assert len(entries) == len(present)
    assert sorted(e.path for e in entries) == sorted(
        stems[row["patientid"]].relative_to(directory).as_posix() for _line, row in present
    )
    assert Counter(e.label for e in entries) == Counter(LABELS[row["finding"]] for _line, row in present)
    assert Counter(e.view for e in entries) == Counter(VIEWS[row["view"]] for _line, row in present)
    patients = {row["patientid"].rstrip(string.ascii_lowercase) for _line, row in present}
    assert {e.patient_id for e in entries} == patients
    assert len(patients) < len(present)  # the sample holds a/b/c images of one patient
    for entry in entries:
        assert entry.modality == "xray"
        assert entry.row.startswith("metadata.csv line ")
    # every row without an image is reported with its line
    missing_rows = {p.row for p in problems if "in the checkout" in p.message}
    assert missing_rows == {f"metadata.csv line {line}" for line, _row in absent}
    others = [p for p in problems if "in the checkout" not in p.message]
    bad = bad_utf8_lines(directory / "metadata.csv")
    notes = [p.message for p in others]
    assert len(notes) == (1 if bad else 0)
    if bad:
        assert "not valid UTF-8" in notes[0] and "cp1252" in notes[0]
        assert all(str(line) in notes[0] for line in bad), "the note names every affected line"


@pytest.mark.upstream
def test_sample_free_text_ages(shared: Path, registry) -> None:
    entries, _problems = run(registry, shared / SAMPLE)
    for line, row in csv_rows_with_lines(shared / SAMPLE / "metadata.csv", "cp1252"):
        entry = next((e for e in entries if e.row == f"metadata.csv line {line}"), None)
        if entry is None:
            continue
        raw = row["age"]
        if raw.isdigit():
            assert entry.age == float(raw) and "age_raw" not in entry.extra
        elif raw:
            assert entry.extra["age_raw"] == raw


def test_generated_extensions_suffixes_and_unlisted(tmp_path: Path, registry) -> None:
    (tmp_path / "metadata.csv").write_text(
        HEADER
        + "COVID-00001,3,M,early 40s,COVID-19,,,,AP erect,X-ray,,\n"
        + "COVID-00002a,,F,67+,No finding,,,,PA,X-ray,,\n"
        + "COVID-00002b,,F,67+,,,,,AP semi erect,X-ray,,\n"
        + "COVID-00003,,,,Tuberculosis?,,,,Oblique,X-ray,,\n"
        + "COVID-00004,,,,COVID-19,,,,,X-ray,,\n"
    )
    image(tmp_path / "images" / "COVID-00001.JPG")
    image(tmp_path / "images" / "COVID-00002a.png")
    image(tmp_path / "images" / "COVID-00002b.jpg")
    image(tmp_path / "images" / "COVID-00003.jpg")
    image(tmp_path / "images" / "COVID-00003.png")
    image(tmp_path / "images" / "COVID-00099.jpg")

    entries, problems = run(registry, tmp_path)
    by_path = {e.path: e for e in entries}
    assert set(by_path) == {
        "images/COVID-00001.JPG",
        "images/COVID-00002a.png",
        "images/COVID-00002b.jpg",
        "images/COVID-00003.jpg",
    }
    first = by_path["images/COVID-00001.JPG"]
    assert (first.label, first.view, first.age, first.extra["age_raw"]) == ("covid-19", "AP", None, "early 40s")
    assert by_path["images/COVID-00002a.png"].age == 67
    assert by_path["images/COVID-00002a.png"].patient_id == by_path["images/COVID-00002b.jpg"].patient_id
    assert by_path["images/COVID-00002b.jpg"].label == "unknown"  # blank finding is not normal
    assert by_path["images/COVID-00003.jpg"].label == "unknown"
    by_row: dict[str, list[str]] = {}
    for problem in problems:
        by_row.setdefault(problem.row or problem.path, []).append(problem.message)
    line5 = " ".join(by_row["metadata.csv line 5"])
    assert "Tuberculosis?" in line5 and "Oblique" in line5 and "several images" in line5
    assert any("COVID-00004" in m for m in by_row["metadata.csv line 6"])
    assert by_row["images/COVID-00099.jpg"] == ["image has no row in metadata.csv; not indexed"]


def test_missing_metadata_is_an_error(tmp_path: Path, registry) -> None:
    image(tmp_path / "images" / "COVID-00001.jpg")
    entries, problems = run(registry, tmp_path)
    assert entries == [] and [p.level for p in problems] == ["error"]
