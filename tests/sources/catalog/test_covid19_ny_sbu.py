"""COVID-19-NY-SBU: TCIA layout, CRLF clinical table with NA and mixed booleans, abdomen studies, COVIDx names."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pydicom

from covid19_images.sources.catalog.covid19_ny_sbu import clinical_value
from tests.conftest import run_parser
from tests.sources.catalog.portal import PORTAL, miniature_copy, needs_portal, portal_spec, tiny_dicom

SOURCE = "covid19-ny-sbu"
TABLE = "deidentified_overlap_tcia.csv.cleaned.csv_20210806.csv"
SEX = {"MALE": "M", "FEMALE": "F", "NA": ""}
TRUTH = {"TRUE": True, "Yes": True, "FALSE": False, "No": False}


def table(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["to_patient_id"]: row for row in csv.DictReader(handle)}


def test_miniature_modality_view_clinical_and_covidx_names(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "sbu")
    clinical = table(folder / TABLE)
    dicoms = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.dcm"))
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert sorted(e.path for e in entries) == dicoms
    for entry in entries:
        pid, study, series, name = entry.path.split("/")[1:]
        header = pydicom.dcmread(folder / entry.path, stop_before_pixels=True)
        assert entry.modality == {"CR": "xray", "DX": "xray", "CT": "ct"}[header.Modality]
        assert (entry.label, entry.patient_id) == ("covid-19", pid)
        row = clinical.get(pid)
        assert entry.sex == (SEX[row["gender_concept_name"]] if row else "")
        if row:
            assert entry.extra.get("icu") == TRUTH.get(row["is_icu"])
            assert entry.extra.get("ventilated") == TRUTH.get(row["was_ventilated"])
            assert entry.extra["age_range"] == row["age.splits"]
        if entry.modality == "xray":
            covidx = f"{pid}-{study}-{series}-{name[:-4]}.jpg".replace(" ", "_")
            assert entry.extra["covidx_name"] == covidx
        assert ("body_part" in entry.extra) == ("ABDOMEN" in study.upper() or "PELVIS" in study.upper())
    without = {e.patient_id for e in entries} - set(clinical)
    assert without and all(any(pid in p.message for p in problems) for pid in without)
    assert any(e.extra.get("body_part") == "abdomen" for e in entries)


def test_clinical_values_na_not_documented_and_mixed_booleans() -> None:
    assert [clinical_value(v) for v in ("NA", "not documented", "", "TRUE", "Yes", "FALSE", "No", "deceased")] == [
        None,
        None,
        None,
        True,
        True,
        False,
        False,
        "deceased",
    ]


@needs_portal
def test_real_clinical_table_crlf_and_every_patient_read(tmp_path: Path) -> None:
    real = PORTAL / "covid-19-ny-sbu" / TABLE
    assert b"\r\n" in real.read_bytes()[:5000]
    folder = tmp_path / "sbu"
    folder.mkdir()
    shutil.copy(real, folder / TABLE)
    clinical = table(real)
    chosen = list(clinical)[::50]
    for number, pid in enumerate(chosen):
        tiny_dicom(
            folder / f"COVID-19-NY-SBU/{pid}/01-01-1901-NA-CHEST AP PORT-{number:05d}/1.000000-AP-00001/1-1.dcm",
            Modality="CR",
            ViewPosition="AP",
        )
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert {e.patient_id for e in entries} == set(chosen) and not problems
    for entry in entries:
        row = clinical[entry.patient_id]
        assert entry.sex == SEX[row["gender_concept_name"]]
        assert entry.extra["outcome"] == row["last.status"] and entry.age is None
        assert entry.extra.get("ventilated") == TRUTH.get(row["was_ventilated"])


def test_a_fetch_through_the_nbia_api_parses_as_the_data_retriever_layout(tmp_path: Path) -> None:
    """A fetch lands ``<PatientID>/<StudyUID>/<SeriesUID>/``: the same rows, the same COVIDx names and study
    descriptions (rebuilt from the header), as the Data Retriever's descriptive folders give."""
    retriever = miniature_copy(SOURCE, tmp_path / "retriever")
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    shutil.copyfile(retriever / TABLE, fetched / TABLE)
    for dicom in retriever.rglob("*.dcm"):
        ds = pydicom.dcmread(dicom, stop_before_pixels=True)
        target = fetched / ds.PatientID / ds.StudyInstanceUID / ds.SeriesInstanceUID / dicom.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dicom, target)

    def facts(folder: Path) -> list[tuple]:
        entries, problems = run_parser(portal_spec(SOURCE), folder)
        assert not [p for p in problems if "not indexed" in p.message]
        return sorted(
            (
                e.patient_id,
                e.modality,
                e.view,
                e.sex,
                e.extra.get("covidx_name"),
                e.extra["study"],
                e.extra.get("body_part"),
            )
            for e in entries
        )

    assert facts(fetched) == facts(retriever) and len(facts(retriever)) == len(list(retriever.rglob("*.dcm")))
