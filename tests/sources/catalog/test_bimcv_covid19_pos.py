"""BIMCV-COVID19+ (manual, synthetic miniature in the documented MIDS layout): views, UMLS CUIs, sessions."""

from __future__ import annotations

import csv
from pathlib import Path

from covid19_images.sources.catalog.bimcv_covid19_pos import cuis_of
from tests.conftest import run_parser
from tests.sources.catalog.portal import miniature_copy, portal_spec

SOURCE = "bimcv-covid19-pos"
VIEWS = {"pa": "PA", "ap": "AP", "ll": "lateral"}


def tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_miniature_every_png_one_entry_with_view_session_and_cuis(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "bimcv")
    labels = {r["ReportID"]: r for r in tsv(next(folder.rglob("labels_covid19_posi.tsv")))}
    people = {r["participant"]: r for r in tsv(next(folder.rglob("participants.tsv")))}
    pictures = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert sorted(e.path for e in entries) == pictures and not problems
    for entry in entries:
        name = Path(entry.path).name
        sub, ses = name.split("_")[:2]
        view = name.split("_vp-")[1].split("_")[0]
        assert (entry.patient_id, entry.view, entry.label) == (sub, VIEWS[view], "covid-19")
        assert entry.extra["session"] == ses and entry.extra["covidx_name"] == name
        assert entry.extra.get("umls_cuis", []) == [
            c for c in labels[ses]["labelCUIS"].strip("[]").replace("'", "").replace(" ", "").split(",") if c
        ]
        assert entry.sex == people[sub]["gender"]


def test_cuis_from_padchest_style_lists_and_junk() -> None:
    assert cuis_of("['C3544344', 'C0521530']") == ["C3544344", "C0521530"]
    assert cuis_of("[]") == [] and cuis_of("C0521530,C3544344") == ["C0521530", "C3544344"]
    assert cuis_of("['C35443', broken") == []


def test_an_image_outside_its_subject_and_session_folders_is_reported(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "bimcv")
    stray = folder / "loose" / "sub-S00001_ses-E00001_run-1_bp-chest_vp-ap_cr.png"
    stray.parent.mkdir()
    stray.write_bytes(next(folder.rglob("*.png")).read_bytes())
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert "loose/" + stray.name not in {e.path for e in entries}
    assert [p.path for p in problems] == ["loose/" + stray.name]
