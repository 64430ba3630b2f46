"""covid-19-pos-case: one CT study of extension-less DICOM files, read from the headers only."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pydicom
import pytest

from covid19_images.core.pseudonyms import pseudonym
from covid19_images.core.schema import Entry, Problem
from tests.conftest import run_parser

SOURCE = "covid19-pos-case"
SAMPLE = "coyotespike-covid-19-pos-case"
#: identifying header fields whose values must never reach the manifest
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "InstitutionName",
    "InstitutionAddress",
    "StationName",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "OperatorsName",
    "StudyDate",
    "DeviceSerialNumber",
)


def run(registry, directory: Path) -> tuple[list[Entry], list[Problem]]:
    spec = registry[SOURCE]
    return run_parser(spec, directory)


def dicom_files(directory: Path) -> list[Path]:
    """Files with the DICM magic, found without the parser."""
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                if handle.read(132)[128:132] == b"DICM":
                    found.append(path)
    return found


def view_by_hand(orientation) -> str:
    row, col = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.abs(np.cross(row, col))
    return ["sagittal", "coronal", "axial"][int(np.argmax(normal))]


def role_by_hand(image_type: list[str]) -> str:
    if "LOCALIZER" in image_type:
        return "localizer"
    if {"DERIVED", "SECONDARY", "REFORMATTED"} & set(image_type):
        return "reformat"
    return "axial"


@pytest.mark.upstream
def test_sample_one_entry_per_instance_from_headers(shared: Path, registry) -> None:
    directory = shared / SAMPLE
    files = dicom_files(directory)
    assert len(files) >= 10
    entries, problems = run(registry, directory)
    assert not problems, [str(p) for p in problems]
    assert sorted(e.path for e in entries) == sorted(p.relative_to(directory).as_posix() for p in files)
    headers = {p.relative_to(directory).as_posix(): pydicom.dcmread(p, stop_before_pixels=True) for p in files}

    for entry in entries:
        ds = headers[entry.path]
        assert entry.modality == "ct"
        assert (entry.label, entry.finding) == ("covid-19", registry[SOURCE].options["label"])
        assert entry.view == view_by_hand(ds.ImageOrientationPatient)
        extra = entry.extra
        assert extra["series_uid"] == ds.SeriesInstanceUID
        assert extra["series_number"] == int(ds.SeriesNumber)
        assert extra["instance_number"] == int(ds.InstanceNumber)
        assert extra["slice_position"] == pytest.approx(float(ds.ImagePositionPatient[2]))
        assert extra["image_type"] == "\\".join(ds.ImageType)
        assert extra["series_role"] == role_by_hand(list(ds.ImageType))
        assert entry.patient_id == pseudonym(str(ds.PatientID), SOURCE)  # the shared keyed pseudonymiser

    # sorted by series, then instance: not by file name
    order = [(int(headers[e.path].SeriesNumber), int(headers[e.path].InstanceNumber)) for e in entries]
    assert order == sorted(order)
    assert [e.path for e in entries] != sorted(e.path for e in entries)
    # the study: one localizer series, axial series, reformats
    roles = {e.extra["series_number"]: e.extra["series_role"] for e in entries}
    assert set(roles.values()) == {"localizer", "axial", "reformat"}


@pytest.mark.upstream
def test_sample_never_copies_identifying_tags(shared: Path, registry) -> None:
    directory = shared / SAMPLE
    entries, _ = run(registry, directory)
    text = json.dumps([asdict(e) for e in entries])
    values = set()
    for path in dicom_files(directory):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in IDENTIFYING:
            value = str(ds.get(keyword, "") or "").strip()
            if len(value) >= 4:
                values.add(value)
    assert any(len(v) > 8 for v in values), "the sample has identifying values to look for"
    for value in values:
        assert value not in text, f"identifying value {value!r} leaked into the entries"


@pytest.mark.upstream
def test_non_dicom_ignored_and_broken_dicom_reported(shared: Path, registry, tmp_path: Path) -> None:
    directory = tmp_path / "pos"
    (directory / "COVID-19-pos-case").mkdir(parents=True)
    for name in ("README.md", "LICENSE"):
        shutil.copy(shared / SAMPLE / name, directory / name)
    good = shared / SAMPLE / "COVID-19-pos-case/IM000118"
    shutil.copy(good, directory / "COVID-19-pos-case/IM000118")
    (directory / "COVID-19-pos-case/IM999998").write_bytes(good.read_bytes()[:300])  # cut inside the header
    (directory / "COVID-19-pos-case/notes.dcm").write_text("not a DICOM file\n")
    entries, problems = run(registry, directory)
    assert [e.path for e in entries] == ["COVID-19-pos-case/IM000118"]
    assert sorted(p.path for p in problems) == ["COVID-19-pos-case/IM999998", "COVID-19-pos-case/notes.dcm"]
    assert all("pydicom cannot read" in p.message for p in problems)
