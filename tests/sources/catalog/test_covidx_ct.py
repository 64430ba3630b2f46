"""COVIDx CT-3A: list lines -> entries with the official split, patients and identity targets from file names."""

from __future__ import annotations

from pathlib import Path

from covid19_images.sources.catalog.covidx_ct import identify
from tests.conftest import run_parser
from tests.sources.catalog.portal import PORTAL, miniature_copy, needs_portal, portal_spec

SOURCE = "covidx-ct"
REAL = PORTAL / "covidx-ct"


def test_miniature_lines_become_entries_with_their_split(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "covidx")
    expected = {}
    for split in ("train", "val", "test"):
        for line in (folder / f"{split}_COVIDx_CT-3A.txt").read_text().splitlines():
            name, cls = line.split()[:2]
            expected[f"3A_images/{name}"] = (split, {"0": "normal", "1": "pneumonia", "2": "covid-19"}[cls])
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert not problems
    assert {e.path: (e.official_split, e.label) for e in entries} == expected


def test_a_listed_file_that_is_absent_and_a_malformed_line_are_reported(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "covidx")
    with open(folder / "val_COVIDx_CT-3A.txt", "a") as handle:
        handle.write("\nghost-0001.png 2 0 0 1 1\nbroken line here\n")
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    messages = [p.message for p in problems]
    assert any("ghost-0001.png is listed but not in" in m for m in messages)
    assert any("not `filename class" in m for m in messages)
    assert not any("ghost" in e.path for e in entries)


def test_file_name_forms_name_patient_and_source_volume() -> None:
    assert identify("NCP_341_1834_0022") == ("NCP_341", "", "0022")
    assert identify("coronacases_010-0075") == ("coronacases_010", "covid19-ct-seg:coronacases_org_010.nii.gz", "0075")
    assert identify("radiopaedia_4_85506_1-0004")[1] == (
        "covid19-ct-seg:radiopaedia_org_covid-19-pneumonia-4_85506_1-dcm.nii.gz"
    )
    assert identify("COVIDCTMD-cap001-IM0025") == ("cap001", "covid-ct-md:Cap subjects/cap001/IM0025.dcm", "")
    assert identify("volume-covid19-A-0573_1_ct-0010") == ("volume-covid19-A-0573", "", "0010")
    assert identify("137covid_patient76_SR_2_IM00014")[0] == "137covid_patient76"


@needs_portal
def test_every_real_list_line_names_a_patient_of_metadata_form(tmp_path: Path) -> None:
    """The real val/test lines (first 2,000 each): every line parses, and CNCB patients look like metadata.csv's."""
    folder = tmp_path / "fetched"
    (folder / "3A_images").mkdir(parents=True)
    names = []
    for split in ("val", "test"):
        text = (REAL / f"splits/v3/{split}_COVIDx_CT-3A.txt").read_text()
        (folder / f"{split}_COVIDx_CT-3A.txt").write_text(text)
        names += [line.split()[0] for line in text.splitlines() if line.strip()]
    for name in set(names):
        (folder / "3A_images" / name).write_bytes(b"")
    (folder / "train_COVIDx_CT-3A.txt").write_text("")
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert len(entries) == len(set(names)) and not [p for p in problems if "not `filename" in p.message]
    metadata_ids = {line.split(",")[0] for line in (REAL / "metadata.csv").read_text().splitlines()[1:]}
    patients = {e.patient_id for e in entries}
    # every patient the lines name is a `patient id` of metadata.csv (85 CNCB patients in these lines)
    assert patients and patients <= metadata_ids
