"""AH Paris CT (ahp-ct): no images could be obtained, so the general DICOM study parser is
run on the real covid-19-pos-case files laid out the way AH Paris's README describes
(``Anonymized/`` and ``Thorax/`` with ``*.dcm``, other folders extension-less)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pydicom
import pytest

from covid19_images.core.pseudonyms import pseudonym
from covid19_images.core.schema import Entry, Problem
from tests.conftest import run_parser

SOURCE = "ahp-ct"
SAMPLE = "coyotespike-AHP-covid19-ctscans"
POS_CASE = "coyotespike-covid-19-pos-case/COVID-19-pos-case"


def run(registry, directory: Path) -> tuple[list[Entry], list[Problem]]:
    spec = registry[SOURCE]
    return run_parser(spec, directory)


@pytest.fixture
def ahp_layout(shared: Path, tmp_path: Path) -> Path:
    """Real DICOM files in the AH Paris layout, plus a second patient derived from them."""
    root = tmp_path / "ahp"
    readme = shared / SAMPLE / "README.md"
    assert "Anonymized" in readme.read_text() and "Thorax" in readme.read_text()
    source = shared / POS_CASE
    layout = {
        "Anonymized": ["IM000118", "IM001324", "IM001584"],  # axial series 2
        "Thorax": ["IM000165", "IM000420", "IM000669"],  # axial series 4
        "Patient 3": ["IM000116", "IM001022", "IM001023", "IM001045"],  # localizer + reformats
    }
    for folder, names in layout.items():
        (root / folder).mkdir(parents=True)
        suffix = ".dcm" if folder in ("Anonymized", "Thorax") else ""
        for name in names:
            shutil.copy(source / name, root / folder / f"{name}{suffix}")
    shutil.copy(readme, root / "README.md")
    # a second patient without PatientID: same pixels, other study, a sagittal orientation
    other = root / "Patient 3" / "SAG0001"
    ds = pydicom.dcmread(source / "IM000164")
    ds.PatientID = ""
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesNumber = 7
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.PatientAge = "045Y"
    ds.PatientSex = "F"
    ds.save_as(other)
    return root


@pytest.mark.upstream
def test_sample_has_no_images_and_says_so(shared: Path, registry) -> None:
    entries, problems = run(registry, shared / SAMPLE)
    assert entries == []
    assert [p.level for p in problems] == ["error"]
    assert "no DICOM files" in problems[0].message


@pytest.mark.upstream
def test_ahp_layout_dcm_and_extensionless(ahp_layout: Path, registry) -> None:
    entries, problems = run(registry, ahp_layout)
    assert not problems, [str(p) for p in problems]
    expected = sorted(
        p.relative_to(ahp_layout).as_posix() for p in ahp_layout.rglob("*") if p.is_file() and p.name != "README.md"
    )
    assert sorted(e.path for e in entries) == expected
    assert {e.label for e in entries} == {"covid-19"}

    headers = {e.path: pydicom.dcmread(ahp_layout / e.path, stop_before_pixels=True) for e in entries}
    for entry in entries:
        ds = headers[entry.path]
        key = str(ds.PatientID) if ds.PatientID else str(ds.StudyInstanceUID)
        assert entry.patient_id == pseudonym(key, SOURCE)  # the shared keyed pseudonymiser
    patients = Counter(e.patient_id for e in entries)
    assert len(patients) == 2

    sagittal = next(e for e in entries if e.path.endswith("SAG0001"))
    assert (sagittal.view, sagittal.age, sagittal.sex) == ("sagittal", 45.0, "F")
    assert sagittal.extra["series_role"] == "other"  # a lone non-axial original series

    # entries come grouped by study and series, slices in instance order
    keys = [(headers[e.path].StudyInstanceUID, int(headers[e.path].SeriesNumber)) for e in entries]
    seen: list = []
    for key in keys:
        if not seen or seen[-1] != key:
            assert key not in seen, "a series is split in the output"
            seen.append(key)
    roles = {int(headers[e.path].SeriesNumber): e.extra["series_role"] for e in entries}
    assert roles == {1: "localizer", 2: "axial", 4: "axial", 601: "reformat", 7: "other"}


@pytest.mark.upstream
def test_small_odd_series_without_localizer_type_is_a_localizer(ahp_layout: Path, registry) -> None:
    scout = ahp_layout / "Patient 3" / "IM000116"
    ds = pydicom.dcmread(scout)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]  # some scanners do not say LOCALIZER
    ds.save_as(scout)
    entries, _ = run(registry, ahp_layout)
    entry = next(e for e in entries if e.path == "Patient 3/IM000116")
    assert (entry.view, entry.extra["series_role"]) == ("coronal", "localizer")
