"""Label, view and age harmonisation on the raw values real upstreams use."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from covid19_images.core.vocab import harmonise_finding, harmonise_view, parse_age


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("COVID-19", "covid-19"),
        ("COVID-19, ARDS", "covid-19"),
        ("Pneumonia/Viral/COVID-19", "covid-19"),  # newest ieee8023 hierarchical schema
        ("Pneumonia/Viral/SARS", "pneumonia"),
        ("Pneumonia/Bacterial/Streptococcus", "pneumonia"),
        ("Pneumonia", "pneumonia"),
        ("No Finding", "normal"),
        ("todo", "unknown"),
        ("", "unknown"),
        ("  ", "unknown"),
        ("something nobody wrote yet", "unknown"),
    ],
)
def test_findings(raw: str, label: str) -> None:
    assert harmonise_finding(raw)[0] == label


def test_unmapped_finding_is_flagged_not_guessed() -> None:
    assert harmonise_finding("Lung nodule of unclear origin") == ("unknown", "", False)
    assert harmonise_finding("todo")[2] is True  # known to mean "no label"


def test_hierarchical_and_flat_spellings_agree() -> None:
    assert harmonise_finding("Pneumonia/Viral/SARS")[:2] == harmonise_finding("SARS")[:2]
    assert harmonise_finding("Pneumonia/Fungal/Pneumocystis")[:2] == harmonise_finding("Pneumocystis")[:2]


@pytest.mark.parametrize(
    ("raw", "view"),
    [("PA", "PA"), ("AP Supine", "AP supine"), ("AP erect", "AP"), ("L", "lateral"), ("?", "unknown"), ("", "unknown")],
)
def test_views(raw: str, view: str) -> None:
    assert harmonise_view(raw) == view


@pytest.mark.parametrize(("raw", "years"), [("65", 65), ("060Y", 60), ("006M", 0.5), ("50+", 50), ("early 40s", None)])
def test_ages(raw: str, years: float | None) -> None:
    assert parse_age(raw) == years


@pytest.mark.upstream
@pytest.mark.parametrize(
    "sample", ["ieee8023-covid-chestxray-dataset", "ieee8023-covid-chestxray-dataset__pinned-548bb58"]
)
def test_every_real_ieee8023_finding_maps_to_a_known_label(shared: Path, sample: str) -> None:
    with open(shared / sample / "metadata.csv", newline="", encoding="utf-8") as handle:
        findings = {row["finding"] for row in csv.DictReader(handle)}
    unmapped = sorted(f for f in findings if not harmonise_finding(f)[2])
    assert unmapped == []
    covid = [f for f in findings if "COVID-19" in f]
    assert covid and all(harmonise_finding(f)[0] == "covid-19" for f in covid)
