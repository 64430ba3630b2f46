"""Darshan Deshpande's folder-labelled X-ray set with augmented copies."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from covid19_images.core.schema import Entry, Problem
from tests.conftest import run_parser

SOURCE = "darshan-xray"
SAMPLE = "coyotespike-covid19-detection-xray-dataset"
ROOT = "covid19-detection-xray-dataset"
LABELS = {
    "BacterialPneumonia": ("pneumonia", "bacterial"),
    "ViralPneumonia": ("pneumonia", "viral"),
    "COVID-19": ("covid-19", ""),
    "Normal": ("normal", ""),
}


def run(registry, directory: Path, **options) -> tuple[list[Entry], list[Problem]]:
    spec = registry[SOURCE]
    if options:
        spec = dataclasses.replace(spec, options={**spec.options, **options})
    return run_parser(spec, directory)


def jpeg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), 50).save(path, "JPEG")


@pytest.mark.upstream
def test_sample_labels_sets_and_augmentation(shared: Path, registry) -> None:
    directory = shared / SAMPLE
    images = sorted((directory / ROOT).rglob("*.jpeg"))
    assert images
    entries, problems = run(registry, directory)
    assert not problems
    assert sorted(e.path for e in entries) == sorted(p.relative_to(directory).as_posix() for p in images)

    def set_of(path: Path) -> str:
        return path.relative_to(directory / ROOT).parts[0]

    assert Counter((e.extra["darshan_set"], e.finding) for e in entries) == Counter(
        (set_of(p), p.parent.name) for p in images
    )
    assert Counter((e.label, e.label_detail) for e in entries) == Counter(LABELS[p.parent.name] for p in images)
    for entry in entries:
        name = Path(entry.path).name
        in_train_data = entry.extra["darshan_set"] == "TrainData"
        # the INDEX claim this relies on: TrainData files carry generator names, the others are numbers
        assert bool(re.fullmatch(r"_\d+_\d+\.jpeg", name)) == in_train_data
        assert entry.extra["augmented"] is in_train_data
        assert entry.extra.get("oversampled", False) is ("OversampledAugmentedCOVID-19" in entry.path)
        assert entry.official_split == ("val" if entry.extra["darshan_set"] == "ValData" else "train")
        assert entry.patient_id == ""
        assert entry.modality == "xray"
        assert entry.row == entry.path


@pytest.mark.upstream
def test_sample_can_leave_augmented_copies_out(shared: Path, registry) -> None:
    directory = shared / SAMPLE
    entries, _problems = run(registry, directory, include_augmented=False)
    expected = [p for p in (directory / ROOT).rglob("*.jpeg") if "TrainData" not in p.parts]
    assert len(entries) == len(expected)
    assert not any(e.extra["augmented"] for e in entries)


def test_unknown_folders_are_reported_not_indexed(tmp_path: Path, registry) -> None:
    jpeg(tmp_path / ROOT / "ValData" / "COVID-19" / "0.jpeg")
    jpeg(tmp_path / ROOT / "ValData" / ".ipynb_checkpoints" / "1.jpeg")
    jpeg(tmp_path / ROOT / "Extra" / "Normal" / "2.jpeg")
    entries, problems = run(registry, tmp_path)
    assert [e.path for e in entries] == [f"{ROOT}/ValData/COVID-19/0.jpeg"]
    assert entries[0].label == "covid-19" and entries[0].official_split == "val"
    assert sorted(p.path for p in problems) == [
        f"{ROOT}/Extra/Normal/2.jpeg",
        f"{ROOT}/ValData/.ipynb_checkpoints/1.jpeg",
    ]


def test_augment_index_is_kept(tmp_path: Path, registry) -> None:
    jpeg(tmp_path / ROOT / "TrainData" / "OversampledAugmentedCOVID-19" / "COVID-19" / "_37_9228584.jpeg")
    entries, problems = run(registry, tmp_path)
    assert not problems
    assert entries[0].extra == {"darshan_set": "TrainData", "augmented": True, "oversampled": True, "augment_index": 37}


def test_empty_checkout_is_an_error(tmp_path: Path, registry) -> None:
    entries, problems = run(registry, tmp_path)
    assert entries == [] and [p.level for p in problems] == ["error"]
