"""Actualmed COVID-19 X-rays: CRLF metadata, blank finding = inconclusive, DICOM-UID-like names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from covid19_images.core.schema import Entry, Problem
from covid19_images.sources.catalog.actualmed_xray import notes_extra
from tests.conftest import csv_rows_with_lines, run_parser

SOURCE = "actualmed-xray"
SAMPLE = "agchung-Actualmed-COVID-chestxray-dataset"
LABELS = {"COVID-19": "covid-19", "No finding": "normal", "": "unknown"}
HEADER = (
    "patientid,offset,sex,age,finding,survival,temperature,pO2 saturation,view,modality,imagename,"
    "artifacts/distortion,notes"
)


def run(registry, directory: Path) -> tuple[list[Entry], list[Problem]]:
    spec = registry[SOURCE]
    return run_parser(spec, directory)


@pytest.mark.upstream
def test_sample_rows_images_labels_patients(shared: Path, registry) -> None:
    directory = shared / SAMPLE
    assert b"\r\n" in (directory / "metadata.csv").read_bytes()
    rows = csv_rows_with_lines(directory / "metadata.csv")
    present = [(line, row) for line, row in rows if (directory / "images" / row["imagename"]).is_file()]
    absent = [(line, row) for line, row in rows if not (directory / "images" / row["imagename"]).is_file()]
    assert present and absent

    entries, problems = run(registry, directory)

    assert sorted(e.path for e in entries) == sorted(f"images/{row['imagename']}" for _line, row in present)
    assert Counter(e.label for e in entries) == Counter(LABELS[row["finding"]] for _line, row in present)
    assert Counter(e.view for e in entries) == Counter(row["view"] for _line, row in present)
    assert {e.patient_id for e in entries} == {row["patientid"] for _line, row in present}
    by_row = {e.row: e for e in entries}
    for line, row in present:
        entry = by_row[f"metadata.csv line {line}"]
        assert entry.patient_id == row["patientid"]
        assert entry.path == f"images/{row['imagename']}"
        assert entry.modality == "xray"
        if not row["finding"]:
            assert entry.label == "unknown"
            assert entry.extra["covid_test"] == "inconclusive"
        # the acquisition date in the notes is also embedded in the DICOM-UID-like file name
        assert entry.extra["date"].replace("-", "") in row["imagename"]
    assert all(e.label != "normal" for e in entries if not e.finding)
    assert {p.row for p in problems} == {f"metadata.csv line {line}" for line, _row in absent}
    assert len(problems) == len(absent)


@pytest.mark.parametrize(
    ("notes", "expected"),
    [
        ("Inconclusive, date taken (YYYYMMDD): 20200313", {"covid_test": "inconclusive", "date": "2020-03-13"}),
        (
            "Negative (covid-19 viral infection is excluded), date taken (YYYYMMDD): 20200317",
            {"covid_test": "negative", "date": "2020-03-17"},
        ),
        (", date taken (YYYYMMDD): 20200318", {"date": "2020-03-18"}),
        ("", {}),
    ],
)
def test_notes_extra(notes: str, expected: dict[str, str]) -> None:
    assert notes_extra(notes) == expected


def test_generated_blank_unknown_and_unlisted(tmp_path: Path, registry) -> None:
    name = "CR.1.2.840.113564.1.20200401.1.png"
    lines = [
        HEADER,
        f'ANON1,,,,,,,,PA,X-ray,{name},,"Inconclusive, date taken (YYYYMMDD): 20200401"',
        "ANON2,,,,Maybe,,,,AP,X-ray,CR.2.png,,",
        "ANON3,,,,COVID-19,,,,PA,X-ray,,,",
    ]
    (tmp_path / "metadata.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    (tmp_path / "images").mkdir()
    for file in (name, "CR.2.png", "CR.3.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / file)
    entries, problems = run(registry, tmp_path)
    by_patient = {e.patient_id: e for e in entries}
    assert set(by_patient) == {"ANON1", "ANON2"}
    assert by_patient["ANON1"].label == "unknown" and by_patient["ANON1"].path == f"images/{name}"
    assert by_patient["ANON2"].label == "unknown"
    messages = {(p.row or p.path): p.message for p in problems}
    assert "'Maybe'" in messages["metadata.csv line 3"]
    assert "no imagename" in messages["metadata.csv line 4"]
    assert "no row" in messages["images/CR.3.png"]
    assert len(problems) == 3
