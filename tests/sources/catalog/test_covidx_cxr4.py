"""COVIDx CXR-4 and CXR-3, the prebuilt releases: their own label files over their own folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_parser
from tests.sources.catalog.portal import miniature_copy, portal_spec

RELEASES = pytest.mark.parametrize("source", ["covidx-cxr4", "covidx-cxr3"])
LABEL = {"positive": "covid-19", "negative": "other"}


def lines(folder: Path) -> dict[str, tuple[str, str, str]]:
    """``<split>/<file>`` -> (split, class, data source) of every well-formed line, read here."""
    found = {}
    for split in ("train", "val", "test"):
        if not (folder / f"{split}.txt").is_file():
            continue  # CXR-3 has no val
        for line in (folder / f"{split}.txt").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4:
                found[f"{split}/{parts[-3]}"] = (split, parts[-2], parts[-1])
    return found


@RELEASES
def test_miniature_split_label_and_origin_per_listed_image(tmp_path: Path, source: str) -> None:
    folder = miniature_copy(source, tmp_path / "release")
    expected = lines(folder)
    assert {cls for _s, cls, _o in expected.values()} == {"positive", "negative"}
    entries, problems = run_parser(portal_spec(source), folder)
    got = {e.path: (e.official_split, e.label, e.extra["covidx_source"]) for e in entries}
    assert got == {path: (split, LABEL[cls], origin) for path, (split, cls, origin) in expected.items()}
    bad = len((folder / "test.txt").read_text().splitlines())
    assert [p.row for p in problems] == [f"test.txt line {bad}"]  # the last line has two fields
    assert all(e.label_detail == "covid-negative" for e in entries if e.label == "other")


def test_a_listed_image_missing_on_disk_is_counted_not_invented(tmp_path: Path) -> None:
    folder = miniature_copy("covidx-cxr4", tmp_path / "cxr4")
    gone = sorted((folder / "train").iterdir())[0]
    gone.unlink()
    entries, problems = run_parser(portal_spec("covidx-cxr4"), folder)
    assert f"train/{gone.name}" not in {e.path for e in entries}
    assert any("1 listed images are not in train/" in p.message for p in problems)
