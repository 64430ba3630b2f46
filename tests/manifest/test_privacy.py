"""No identifying DICOM value ever reaches manifest.csv or problems.csv (the manifest is the export).

Checked on the real covid-19-pos-case study, on real CT slices with a name, birth date,
IDs, institution and staff written into their headers, and on an upstream whose metadata
CSV copies those values next to the DICOM files (which the DICOM parser alone cannot
catch: the builder's check must). The identifying values are read here with pydicom
directly, not through ``covid19_images.manifest.privacy``, so the check does not trust the code it
checks. ``scan_identifying`` must name the tags and never the values.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from covid19_images.manifest.build import MANIFEST_FILE, PROBLEMS_FILE, read_manifest
from covid19_images.manifest.privacy import PSEUDONYM_KEY_ENV, is_anonymised, pseudonym, scan_identifying
from covid19_images.sync.run import sync
from covid19_images.testing.mirrors import build_mirror, mirror_path
from tests.badinputs import IEEE_HEADER, POS_CASE, Upstream, dicom_without_pixels, ieee_row
from tests.badinputs import make_root as make_test_root
from tests.conftest import run_parser

pytestmark = pytest.mark.upstream
POS = "covid19-pos-case"

#: Identifying values written into the generated headers, and the keyword each one goes to.
IDENTITY = {
    "PatientName": "Doerr^Janet^Q",
    "PatientID": "ZZ-PAT-8842731",
    "OtherPatientIDs": "MRN-5550199",
    "PatientBirthDate": "19650312",
    "PatientAddress": "12 Example Lane, Springfield",
    "InstitutionName": "St Example General Hospital",
    "InstitutionAddress": "1 Example Road, Springfield",
    "ReferringPhysicianName": "Okonkwo^Ada",
    "PerformingPhysicianName": "Lindqvist^Bruno",
    "OperatorsName": "Yamamoto^Kenji",
    "AccessionNumber": "ACC99887766",
    "StationName": "CTSTATION-7731",
}
EXPECTED_TAGS = (
    "PatientName,PatientID,OtherPatientIDs,PatientBirthDate,PatientAddress,InstitutionName,InstitutionAddress,"
    "ReferringPhysicianName,PerformingPhysicianName,OperatorsName,AccessionNumber,StationName,BurnedInAnnotation"
)
#: Keywords whose values the test itself treats as identifying (independent of privacy.py).
TEST_KEYWORDS = (*IDENTITY, "PatientBirthName", "PatientTelephoneNumbers", "DeviceSerialNumber")


def header_values(path: Path) -> set[str]:
    """Every identifying value in a DICOM header: the listed keywords and every person name anywhere."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    found: set[str] = set()
    for element in ds.iterall():
        if element.keyword in TEST_KEYWORDS or element.VR == "PN":
            values = element.value if element.VM > 1 else [element.value]
            found |= {str(v).strip() for v in values if v is not None and len(str(v).strip()) >= 3}
    return found


def spellings(values: set[str]) -> set[str]:
    """The values, plus each part of a person name (``Doerr^Janet`` may be written ``Janet Doerr``)."""
    out = set(values)
    for value in values:
        out |= {part for part in value.replace("=", "^").split("^") if len(part) >= 4}
    return out


def assert_nowhere(root: Path, values: set[str]) -> None:
    assert values, "the test needs values to look for"
    for relative in (MANIFEST_FILE, PROBLEMS_FILE):
        text = (root / relative).read_text(encoding="utf-8").lower()
        leaked = sorted(v for v in spellings(values) if v.lower() in text)
        assert not leaked, f"{relative} carries identifying values {leaked}"


def identified_slice(source: str, destination: Path, **overrides: str) -> Path:
    """A real pos-case CT slice with the IDENTITY values (or ``overrides``) written into its header."""
    ds = pydicom.dcmread(POS_CASE / "COVID-19-pos-case" / source)
    for keyword, value in {**IDENTITY, **overrides}.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.BurnedInAnnotation = overrides.get("BurnedInAnnotation", "YES")
    destination.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(destination)
    return destination


ANONYMISED = {
    "PatientName": "ANONYMOUS",
    "PatientID": "0000",
    "OtherPatientIDs": None,
    "PatientBirthDate": "",
    "PatientAddress": None,
    "InstitutionName": "",
    "InstitutionAddress": None,
    "ReferringPhysicianName": "",
    "PerformingPhysicianName": None,
    "OperatorsName": "",
    "AccessionNumber": "",
    "StationName": None,
    "BurnedInAnnotation": "NO",
}


def test_real_pos_case_manifest_has_no_identifying_value(
    make_root, registry, shared: Path, tmp_path: Path, on_miniature: bool
) -> None:
    mirror = tmp_path / "mirror"
    build_mirror(mirror_path(mirror, registry[POS].url), [shared / "coyotespike-covid-19-pos-case"])
    root = make_root([POS])
    report = sync(root, mirror=mirror, progress=False)
    assert not report.failed, report.summary()
    manifest = read_manifest(root)
    assert len(manifest) == 19 and set(manifest["format"]) == {"dicom"}
    files = sorted((root / "datasets" / POS / "COVID-19-pos-case").iterdir())
    values = set().union(*(header_values(f) for f in files))
    # what the real headers carry (the miniature's headers carry synthetic stand-ins instead)
    real = {"HAP ^1", "AW91856813.43.1583241180"}
    carried = {"Synthfamily^Synthgiven", "SYNTHETIC-PATIENT-0001"} if on_miniature else real
    assert carried <= values
    assert_nowhere(root, values)
    # grouping still works: one patient, a one-way hash of the DICOM PatientID
    assert manifest["patient_id"].nunique() == 1

    found = scan_identifying(root, manifest)
    assert {f["path"] for f in found} == set(manifest["path"])
    for item in found:
        assert set(item) == {"path", "tags"}
        assert {"PatientName", "PatientID", "StationName"} <= set(item["tags"].split(","))
    assert not any(v.lower() in json.dumps(found).lower() for v in spellings(values))


def test_generated_identifying_headers_never_reach_the_manifest(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    identified_slice("IM000118", tree / "study" / "IM000118")
    identified_slice("IM000164", tree / "study" / "IM000164")
    identified_slice("IM000420", tree / "study" / "IM000420", **ANONYMISED)
    (tree / "README.md").write_text("CT slices\n")
    mirror = tmp_path / "mirror"
    upstream = Upstream(mirror, "example", "ct-privacy")
    upstream.publish(tree)
    root = make_test_root(
        tmp_path / "root",
        [
            {
                "name": "ct-privacy",
                "url": upstream.url,
                "parser": "dicom_study",
                "modalities": ["ct"],
                "options": {"label": "covid-19"},
            }
        ],
    )
    report = sync(root, mirror=mirror, progress=False)
    assert not report.failed, report.summary()
    manifest = read_manifest(root)
    assert len(manifest) == 3 and set(manifest["format"]) == {"dicom"}
    values = set().union(*(header_values(f) for f in (root / "datasets/ct-privacy/study").iterdir()))
    assert set(IDENTITY.values()) <= values
    assert_nowhere(root, values)
    # the same patient groups together without carrying the ID
    identified = manifest[~manifest["path"].str.endswith("IM000420")]
    assert identified["patient_id"].nunique() == 1

    found = {f["path"]: f["tags"] for f in scan_identifying(root, manifest)}
    assert found == {
        "datasets/ct-privacy/study/IM000118": EXPECTED_TAGS,
        "datasets/ct-privacy/study/IM000164": EXPECTED_TAGS,
    }


def test_builder_removes_identifying_values_that_metadata_copies(tmp_path: Path) -> None:
    """An upstream CSV repeating the hospital ID, the institution and a name next to DICOM files."""
    tree = tmp_path / "tree"
    identified_slice("IM000118", tree / "images" / "slice-1.dcm")
    identified_slice("IM000164", tree / "images" / "Doerr_Janet_slice-2.dcm")
    identified_slice("IM000420", tree / "images" / "slice-3.dcm")
    (tree / "images" / "no-pixels.dcm").write_bytes(dicom_without_pixels(**IDENTITY))
    rows = [
        ieee_row("slice-1.dcm", patientid=IDENTITY["PatientID"], modality="CT", location=IDENTITY["InstitutionName"]),
        ieee_row("Doerr_Janet_slice-2.dcm", patientid="2", modality="CT"),
        ieee_row("slice-3.dcm", patientid="3", modality="CT", finding="Janet Doerr"),
        ieee_row("no-pixels.dcm", patientid="4", modality="CT"),
    ]
    (tree / "metadata.csv").write_text("\n".join([IEEE_HEADER, *rows]) + "\n")
    mirror = tmp_path / "mirror"
    upstream = Upstream(mirror, "example", "leaky")
    upstream.publish(tree)
    root = make_test_root(tmp_path / "root", [{"name": "leaky", "url": upstream.url}])
    report = sync(root, mirror=mirror, progress=False)
    assert not report.failed, report.summary()

    assert_nowhere(root, set(IDENTITY.values()))
    manifest = read_manifest(root).set_index("path")
    first = manifest.loc["datasets/leaky/images/slice-1.dcm"]
    assert first["patient_id"] == f"leaky:{pseudonym(IDENTITY['PatientID'], 'leaky')}"
    assert json.loads(first["extra"])["location"] == "[removed]"
    third = manifest.loc["datasets/leaky/images/slice-3.dcm"]
    assert third["finding"] == "[removed] [removed]" and third["label"] == "unknown"
    assert "datasets/leaky/images/Doerr_Janet_slice-2.dcm" not in manifest.index

    problems = {(p.path, p.row): p.message for p in report.build.problems}
    tags = (
        "PatientName, PatientID, OtherPatientIDs, PatientBirthDate, PatientAddress, InstitutionName, "
        "InstitutionAddress, ReferringPhysicianName, PerformingPhysicianName, OperatorsName, AccessionNumber, "
        "StationName"
    )
    # problem paths are relative to the source folder (datasets/leaky/), like every Problem.path
    assert problems[("images/slice-1.dcm", "metadata.csv line 2")] == (
        f"identifying DICOM header values ({tags}) removed from column(s) patient_id, extra"
    )
    assert problems[("images/[removed]_[removed]_slice-2.dcm", "metadata.csv line 3")] == (
        "left out of the manifest: the file path contains an identifying DICOM header value "
        f"({tags}, BurnedInAnnotation); rename it upstream"
    )
    assert problems[("metadata.csv", "metadata.csv line 4")] == "unmapped finding '[removed] [removed]' -> unknown"
    assert "DICOM file has no pixel data" in problems[("images/no-pixels.dcm", "metadata.csv line 5")]

    # a second sync, which may use the caches: the same redacted problems, and no value in the caches either
    again = sync(root, offline=True, progress=False)
    assert not again.failed, again.summary()
    assert {(p.path, p.row): p.message for p in again.build.problems} == problems
    assert_nowhere(root, set(IDENTITY.values()))
    import git

    cache = Path(git.Repo(root).git_dir) / "covid19-images-cache"
    for stored in (p for p in cache.rglob("*") if p.is_file()):
        text = stored.read_bytes().decode("utf-8", "replace").lower()
        assert not [v for v in spellings(set(IDENTITY.values())) if v.lower() in text], stored.name


def test_scan_identifying_reads_only_dicom_rows_and_never_returns_values(tmp_path: Path) -> None:
    identified_slice("IM000118", tmp_path / "a.dcm")
    identified_slice("IM000164", tmp_path / "b.dcm", **ANONYMISED)
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    manifest = pd.DataFrame(
        {
            "path": ["a.dcm", "b.dcm", "c.png", "missing.dcm", "a.dcm"],
            "format": ["dicom", "dicom", "png", "dicom", "jpeg"],
        }
    )
    assert scan_identifying(tmp_path, manifest) == [{"path": "a.dcm", "tags": EXPECTED_TAGS}]
    assert scan_identifying(tmp_path, manifest.iloc[0:0]) == []


@pytest.mark.parametrize("value", ["", "  ", "ANONYMOUS", "Anonymized", "anon", "XXXX", "0000", "^", "REMOVED"])
def test_anonymiser_placeholders_are_not_identifying(value: str) -> None:
    assert is_anonymised(value)


@pytest.mark.parametrize("value", ["Doerr^Janet", "12345", "HAP ^1", "AW91856813.43.1583241180"])
def test_real_values_are_identifying(value: str) -> None:
    assert not is_anonymised(value)


def test_pseudonym_is_stable_and_one_way() -> None:
    assert pseudonym("ZZ-PAT-8842731", POS) == pseudonym(" ZZ-PAT-8842731 ", POS)
    assert pseudonym("ZZ-PAT-8842731", POS) != pseudonym("ZZ-PAT-8842732", POS)
    assert "8842731" not in pseudonym("ZZ-PAT-8842731", POS) and pseudonym("x", POS).startswith("pid-")


def test_pseudonym_is_not_a_plain_hash_and_differs_per_source() -> None:
    """Plain sha256 of a record number is reversible by trying every number and joins sources."""
    patient = "ZZ-PAT-8842731"
    ids = {source: pseudonym(patient, source) for source in (POS, "ahp-ct")}
    assert ids[POS] != ids["ahp-ct"]
    plain = hashlib.sha256(patient.encode()).hexdigest()
    for value in ids.values():
        assert value.removeprefix("pid-") not in plain


def test_pseudonym_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PSEUDONYM_KEY_ENV, raising=False)
    public = pseudonym("ZZ-PAT-8842731", POS)
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, "a hospital's own secret")
    private = pseudonym("ZZ-PAT-8842731", POS)
    assert private != public and private.startswith("pid-")
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, "")  # empty means unset: the public default
    assert pseudonym("ZZ-PAT-8842731", POS) == public


def test_same_real_patient_in_two_dicom_sources_is_not_linkable(shared: Path, registry) -> None:
    """The real pos-case study read as two sources (AH Paris republishes Arterys studies): the
    parser gives each source its own id for the one PatientID, and neither is sha256(PatientID)."""
    study = shared / "coyotespike-covid-19-pos-case" / "COVID-19-pos-case"
    patient = str(pydicom.dcmread(study / "IM000118", stop_before_pixels=True).PatientID)
    plain = hashlib.sha256(patient.encode()).hexdigest()
    ids = {}
    for source in (POS, "ahp-ct"):
        entries, _problems = run_parser(registry[source], study)
        assert entries
        ids[source] = {entry.patient_id for entry in entries}
        assert len(ids[source]) == 1, ids[source]  # still one patient within the source
        assert next(iter(ids[source])).removeprefix("pid-") not in plain
    assert ids[POS].isdisjoint(ids["ahp-ct"])
