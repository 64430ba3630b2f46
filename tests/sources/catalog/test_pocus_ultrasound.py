"""POCUS lung ultrasound: files are the unit, labels from dataset_metadata.csv or the name prefix."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import pytest

from covid19_images.core.schema import Entry, Problem
from tests.conftest import run_parser

SOURCE = "pocus-ultrasound"
SAMPLE = "jannisborn-covid19_ultrasound"
METADATA = "data/dataset_metadata.csv"
MEDIA = (".jpg", ".jpeg", ".png", ".gif", ".mp4", ".avi", ".mov", ".mpeg")
LABELS = {
    "covid-19": "covid-19",
    "regular": "normal",
    "bacterial pneumonia": "pneumonia",
    "viral pneumonia": "pneumonia",
}


def run(registry, directory: Path) -> tuple[list[Entry], list[Problem]]:
    spec = registry[SOURCE]
    return run_parser(spec, directory)


def metadata_rows(directory: Path) -> list[tuple[int, dict[str, str]]]:
    """(first physical line, row) read with the csv module; the empty header cell is simply ''."""
    with open(directory / METADATA, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, start = [], 2
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1  # quoted cells span lines: the next record starts here
    return rows


def media(directory: Path) -> list[Path]:
    return sorted(
        p
        for folder in ("data/pocus_images", "data/pocus_videos")
        for p in (directory / folder).rglob("*")
        if p.is_file() and p.suffix.lower() in MEDIA
    )


@pytest.mark.upstream
def test_sample_entries_match_files_and_metadata(shared: Path, registry, on_miniature: bool) -> None:
    directory = shared / SAMPLE
    files = media(directory)
    rows = metadata_rows(directory)
    # the real catalogue has 374 rows; the miniature keeps the held files' rows and a few others
    assert len(files) >= 10 and len(rows) > (len(files) if on_miniature else 300)
    by_stem = {row["Filename"]: (line, row) for line, row in rows}
    entries, problems = run(registry, directory)
    assert sorted(e.path for e in entries) == sorted(p.relative_to(directory).as_posix() for p in files)

    for entry in entries:
        path = directory / entry.path
        probe = "convex" if "/convex/" in entry.path else "linear"
        assert (entry.modality, entry.view) == ("ultrasound", probe)
        line, row = by_stem[path.stem]  # every sample file has a row under its exact stem
        assert entry.label == LABELS[row["Label"].lower()]
        assert entry.license == row["License"]
        assert entry.patient_id == row["Patient ID / Name"]
        assert entry.row.endswith(f"line {line}")
        assert entry.extra["type"] == ("video" if "pocus_videos" in entry.path else "image")

    # rows without a file: one summary count, plus each InThisRepo=Yes row on its own
    stems = {p.stem for p in files}
    absent = [(line, row) for line, row in rows if row["Filename"] not in stems]
    summary = [p for p in problems if p.level == "info"]
    assert len(summary) == 1 and summary[0].message.startswith(f"{len(absent)} of {len(rows)} metadata rows")
    yes_missing = sorted(f"line {line}" for line, row in absent if row["InThisRepo"] == "Yes")
    reported = sorted(
        p.row.rsplit(" ", 2)[-2] + " " + p.row.rsplit(" ", 1)[-1] for p in problems if "InThisRepo=Yes" in p.message
    )
    assert reported == yes_missing
    assert len(problems) == 1 + len(yes_missing), [str(p) for p in problems if "InThisRepo" not in p.message]


@pytest.mark.upstream
def test_sample_label_vocabulary_and_sex(shared: Path, registry) -> None:
    entries, _ = run(registry, shared / SAMPLE)
    rows = {row["Filename"]: row for _line, row in metadata_rows(shared / SAMPLE)}
    expected_sex = Counter({"m": "M", "w": "F"}.get(rows[Path(e.path).stem]["Gender"].lower(), "") for e in entries)
    assert Counter(e.sex for e in entries) == expected_sex
    assert {"covid-19", "normal", "pneumonia"} <= {e.label for e in entries}
    assert {e.label_detail for e in entries if e.label == "pneumonia"} <= {"bacterial", "viral"}


@pytest.mark.upstream
def test_uncertain_folder_prefix_fallback_and_loose_match(shared: Path, registry, tmp_path: Path) -> None:
    root = tmp_path / "pocus"
    (root / "data").mkdir(parents=True)
    shutil.copy(shared / SAMPLE / METADATA, root / METADATA)
    video = shared / SAMPLE / "data/pocus_videos/linear/Vir_liftl_H1N1_case2_clip2.mp4"
    image = shared / SAMPLE / "data/pocus_images/convex/Reg_Avi_Image001.jpg"
    layout = {
        # the real file of the uncertain folder (FULL_TREE.tsv), its row says Viral pneumonia
        "data/pocus_videos/linear/label_uncertain/Vir_or_Pneu_prospective_file4.mp4": video,
        "data/pocus_images/convex/Cov_never_in_the_sheet.jpg": image,
        "data/pocus_images/convex/mystery.jpg": image,
        "data/pocus_images/linear/reg avi-image001.JPG": image,  # drifted spelling of Reg_Avi_Image001
    }
    for relative, source in layout.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / relative)
    entries, problems = run(registry, root)
    by_name = {Path(e.path).name: e for e in entries}
    uncertain = by_name["Vir_or_Pneu_prospective_file4.mp4"]
    assert (uncertain.label, uncertain.view, uncertain.extra["label_uncertain"]) == ("unknown", "linear", "true")
    assert uncertain.finding == "Viral pneumonia"
    prefixed = by_name["Cov_never_in_the_sheet.jpg"]
    assert (prefixed.label, prefixed.license, prefixed.extra["label_source"]) == ("covid-19", "", "filename")
    assert by_name["mystery.jpg"].label == "unknown"
    assert any(p.path.endswith("mystery.jpg") and "no metadata row" in p.message for p in problems)
    loose = by_name["reg avi-image001.JPG"]
    rows = {row["Filename"]: row for _line, row in metadata_rows(root)}
    assert (loose.label, loose.license, loose.view) == ("normal", rows["Reg_Avi_Image001"]["License"], "linear")
