"""MosMedData: the parser over its miniature, and over the real registry workbook (../shared/upstream-portal)."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl

from tests.conftest import run_parser
from tests.sources.catalog.portal import PORTAL, miniature_copy, needs_portal, portal_spec

SOURCE = "mosmeddata"
REAL = PORTAL / "mosmeddata-covid19-1110"


def test_miniature_every_study_with_its_grade_and_mask(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "mosmed")
    studies = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("study_*.nii.gz") if "/studies/" in str(p))
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert sorted(e.path for e in entries) == studies and not problems
    for entry in entries:
        grade = entry.path.split("/studies/")[1].split("/")[0]
        assert entry.extra["grade"] == grade
        assert entry.label == ("normal" if grade == "CT-0" else "covid-19")
        mask = folder / "COVID19_1110/masks" / (entry.patient_id + "_mask.nii.gz")
        assert entry.extra.get("mask", "") == (mask.relative_to(folder).as_posix() if mask.is_file() else "")


def test_a_study_missing_from_the_download_and_one_missing_from_the_registry_are_reported(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "mosmed")
    gone = next((folder / "COVID19_1110/studies/CT-2").glob("*.nii.gz"))
    gone.unlink()
    extra = folder / "COVID19_1110/studies/CT-3/study_1064.nii.gz"
    extra.parent.mkdir()
    shutil.copy(next((folder / "COVID19_1110/studies/CT-0").glob("*.nii.gz")), extra)
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    messages = [p.message for p in problems]
    assert any(f"/studies/CT-2/{gone.name}" in m and "not in the download" in m for m in messages)
    assert any("not in the registry" in m for m in messages)
    assert {e.path: e.extra["grade"] for e in entries}[extra.relative_to(folder).as_posix()] == "CT-3"


@needs_portal
def test_the_real_registry_read_at_the_top_of_the_folder(tmp_path: Path) -> None:
    """The real workbook with every study it lists present (as empty stand-ins): one entry per row."""
    sheet = openpyxl.load_workbook(REAL / "dataset_registry.xlsx", read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))[1:]
    folder = tmp_path / "fetched"
    folder.mkdir()
    shutil.copy(REAL / "dataset_registry.xlsx", folder / "dataset_registry.xlsx")
    for _study, _grade, study_file, mask_file in rows:
        for cell in (study_file, mask_file):
            if cell:
                (folder / cell.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                (folder / cell.lstrip("/")).write_bytes(b"")
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert not problems and len(entries) == len(rows) == 1110
    masks = [e for e in entries if e.extra.get("mask")]
    assert len(masks) == sum(1 for r in rows if r[3]) == 50
    assert {e.extra["grade"] for e in masks} == {"CT-1"}
    counts = {g: sum(1 for e in entries if e.extra["grade"] == g) for g in ("CT-0", "CT-1", "CT-2", "CT-3", "CT-4")}
    assert counts == {g: sum(1 for r in rows if r[1] == g) for g in counts}
