"""Licence normalisation against the raw values upstream really writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from covid19_images.core.licenses import is_unknown, license_terms, normalise_license, parse_license

#: Every raw value seen in ieee8023 metadata.csv (June 2020 and March 2020) and pocus
#: dataset_metadata.csv, with the id a person reading the licence would write down.
EXPECTED = {
    "": "unknown",
    " ": "unknown",
    "None": "unknown",
    "CC BY-NC-SA": "CC-BY-NC-SA",
    "CC BY-NC-SA 4.0": "CC-BY-NC-SA-4.0",
    "CC BY 3.0": "CC-BY-3.0",
    "CC BY-NC-ND": "CC-BY-NC-ND",
    "CC BY-NC-ND 4.0": "CC-BY-NC-ND-4.0",
    "Apache 2.0": "Apache-2.0",
    "listed as authorized for everyone": "custom-authorized-for-everyone",
    "CC BY 4.0": "CC-BY-4.0",
    "CC BY": "CC-BY",
    "CC BY-SA": "CC-BY-SA",
    "CC BY-NC 4.0": "CC-BY-NC-4.0",
    "CC BY-NC -SA 4.0": "CC-BY-NC-SA-4.0",
    "CC BY-NC -SA 3.0": "CC-BY-NC-SA-3.0",
    "COVID-19 emergency license": "custom-covid19-emergency",
    "CC BY 2.0": "CC-BY-2.0",
    "CC BY-NC-ND 4.0 ": "CC-BY-NC-ND-4.0",
    "CC-BY-NC-ND": "CC-BY-NC-ND",
}


@pytest.mark.parametrize(("raw", "expected"), sorted(EXPECTED.items()))
def test_known_raw_values(raw: str, expected: str) -> None:
    assert parse_license(raw) == expected


@pytest.mark.upstream
def test_every_raw_value_in_the_real_metadata_is_understood(shared: Path) -> None:
    files = {
        "ieee8023-covid-chestxray-dataset/metadata.csv": "license",
        "ieee8023-covid-chestxray-dataset__pinned-548bb58/metadata.csv": "license",
        "jannisborn-covid19_ultrasound/data/dataset_metadata.csv": "License",
    }
    seen: set[str] = set()
    for relative, column in files.items():
        frame = pd.read_csv(shared / relative, dtype=str, keep_default_na=False)
        seen |= set(frame[column])
    assert len(seen) >= 15
    unmapped = sorted(v for v in seen if v not in EXPECTED)
    assert unmapped == [], "a new raw licence value upstream: add it to EXPECTED with its id"
    for value in seen:
        assert not parse_license(value).startswith("other:"), value


def test_urls_and_unusual_spellings() -> None:
    assert parse_license("https://creativecommons.org/licenses/by-nc/4.0/#") == "CC-BY-NC-4.0"
    assert parse_license("https://creativecommons.org/publicdomain/zero/1.0/") == "CC0-1.0"
    assert parse_license("Creative Commons BY-SA 4 International") == "CC-BY-SA-4.0"
    assert parse_license("cc by-nc-sa 3.0 unported") == "CC-BY-NC-SA-3.0"
    assert parse_license("CC BY-ND-SA") == "other:cc-by-nd-sa", "no such licence: kept visible, not invented"
    assert parse_license("Some hospital's terms") == "other:some-hospital-s-terms"
    assert parse_license("Unlicense") == "Unlicense" and parse_license("CC0") == "CC0-1.0"


def test_row_licence_wins_and_per_image_sources_do_not_inherit() -> None:
    assert normalise_license("CC BY 4.0", "CC0-1.0") == "CC-BY-4.0"
    assert normalise_license("", "CC0-1.0") == "CC0-1.0"
    assert normalise_license("None", "Unlicense") == "Unlicense"
    assert normalise_license("", "per-image") == "unknown"
    assert normalise_license(" ", "") == "unknown"
    assert is_unknown("unknown") and not is_unknown("other:x") and not is_unknown("CC-BY-4.0")


def test_terms() -> None:
    assert license_terms("CC-BY-NC-SA-4.0") == {"commercial": False, "derivatives": True, "share_alike": True}
    assert license_terms("CC-BY-NC-ND") == {"commercial": False, "derivatives": False, "share_alike": False}
    assert license_terms("CC0-1.0")["commercial"] is True
    assert license_terms("unknown") == {"commercial": None, "derivatives": None, "share_alike": None}
