"""NIH ChestX-ray14 sample: multi-label CSV, partial image checkouts, odd ages."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from covid19_images.core.schema import Entry, Problem
from covid19_images.sources.catalog.nih_chestxray14_sample import harmonise_labels
from tests.conftest import run_parser

SOURCE = "nih-chestxray14-sample"
SAMPLE = "nih-chestxray14-sample"
HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImageWidth,OriginalImageHeight,OriginalImagePixelSpacing_x,OriginalImagePixelSpacing_y"
)


def run(registry, directory: Path) -> tuple[list[Entry], list[Problem]]:
    spec = registry[SOURCE]
    return run_parser(spec, directory)


def png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), 0).save(path, "PNG")


def expected_label(finding: str) -> str:
    parts = finding.split("|")
    if parts == ["No Finding"]:
        return "normal"
    return "pneumonia" if "Pneumonia" in parts else "other"


@pytest.mark.upstream
def test_sample_rows_images_and_summary(shared: Path, registry) -> None:
    directory = shared / SAMPLE
    with (directory / "sample_labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    on_disk = {p.name: p for p in directory.rglob("*.png")}
    present = [r for r in rows if r["Image Index"] in on_disk]
    absent = len(rows) - len(present)
    assert present, "sample has no listed image"

    entries, problems = run(registry, directory)

    assert len(entries) == len(present)
    by_name = {Path(e.path).name: e for e in entries}
    for row in present:
        entry = by_name[row["Image Index"]]
        assert (directory / entry.path).is_file()
        assert entry.finding == row["Finding Labels"]
        assert entry.label == expected_label(row["Finding Labels"])
        assert entry.view == row["View Position"]
        assert entry.patient_id == row["Patient ID"]
        assert entry.sex == row["Patient Gender"]
        assert entry.age == float(row["Patient Age"][:-1])
        assert entry.modality == "xray"
    assert len({e.patient_id for e in entries}) == len({r["Patient ID"] for r in present})
    # one summary for the absent rows, not one problem per row
    assert len(problems) == 1
    assert f"{absent} of {len(rows)} rows have no image" in problems[0].message


@pytest.mark.upstream
def test_every_finding_in_the_sample_is_mapped(shared: Path) -> None:
    with (shared / SAMPLE / "sample_labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    results = Counter()
    for row in rows:
        label, _detail, why = harmonise_labels(row["Finding Labels"])
        assert not why, row
        assert label == expected_label(row["Finding Labels"])
        results[label] += 1
    assert "covid-19" not in results
    assert results["normal"] == sum(r["Finding Labels"] == "No Finding" for r in rows)
    assert results["pneumonia"] == sum("Pneumonia" in r["Finding Labels"].split("|") for r in rows)


def test_generated_layouts_labels_and_ages(tmp_path: Path, registry) -> None:
    lines = [
        HEADER,
        "00000001_000.png,Pneumonia|Infiltration,0,1,060Y,M,PA,2048,2500,0.1,0.1",
        "00000002_000.png,No Finding,0,2,013M,F,AP,2048,2500,0.1,0.1",
        "00000003_000.png,Effusion|Mass,0,3,411Y,M,AP,2048,2500,0.1,0.1",
        "00000004_000.png,COVID-19,0,4,001D,F,PA,2048,2500,0.1,0.1",
        "00000005_000.png,Sarcoidosis,0,5,050Y,F,PA,2048,2500,0.1,0.1",
        "00000006_000.png,No Finding,0,6,050Y,F,PA,2048,2500,0.1,0.1",
        "00000007_000.png,No Finding,0,7,050Y,F,PA,2048,2500,0.1,0.1",
    ]
    (tmp_path / "sample_labels.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    png(tmp_path / "images" / "00000001_000.png")  # NIH release layout
    png(tmp_path / "sample" / "images" / "00000002_000.png")  # Kaggle layout
    png(tmp_path / "elsewhere" / "batch" / "00000003_000.png")  # unique base name
    png(tmp_path / "images" / "00000004_000.png")
    png(tmp_path / "images" / "00000005_000.png")
    png(tmp_path / "a" / "00000006_000.png")  # two candidates: ambiguous
    png(tmp_path / "b" / "00000006_000.png")
    png(tmp_path / "images" / "99999999_000.png")  # not listed

    entries, problems = run(registry, tmp_path)
    by_patient = {e.patient_id: e for e in entries}
    assert set(by_patient) == {"1", "2", "3", "4", "5"}
    assert by_patient["1"].label == "pneumonia" and by_patient["1"].path == "images/00000001_000.png"
    assert by_patient["2"].label == "normal" and by_patient["2"].age == pytest.approx(13 / 12, abs=1e-3)
    assert by_patient["3"].label == "other" and by_patient["3"].age is None
    assert by_patient["3"].path == "elsewhere/batch/00000003_000.png"
    assert by_patient["4"].label == "unknown"  # pre-2020 data cannot be COVID-19
    assert by_patient["5"].label == "unknown"
    messages = [p.message for p in problems]
    assert any("implausible age '411Y'" in m for m in messages)
    assert any("COVID-19 in pre-2020" in m for m in messages)
    assert any("'Sarcoidosis'" in m for m in messages)
    assert any("found in 2 places" in m for m in messages)
    assert any(m.startswith("1 of 7 rows have no image") for m in messages)
    assert any(m.startswith("1 images are not listed") and "99999999_000.png" in m for m in messages)
    rows = {p.row for p in problems if "411Y" in p.message}
    assert rows == {"sample_labels.csv line 4"}


def test_missing_labels_file_is_an_error(tmp_path: Path, registry) -> None:
    png(tmp_path / "images" / "00000001_000.png")
    entries, problems = run(registry, tmp_path)
    assert entries == []
    assert [p.level for p in problems] == ["error"]
