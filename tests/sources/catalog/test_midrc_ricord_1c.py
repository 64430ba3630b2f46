"""MIDRC-RICORD-1c: TCIA layout, COVIDx names from study UID tails, MD.ai labels of several readers."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pydicom

from covid19_images.sources.catalog.midrc_ricord_1c.annotations import read as read_labels
from covid19_images.sources.parsing import SourceContext, list_files
from tests.conftest import run_parser
from tests.sources.catalog.portal import PORTAL, miniature_copy, needs_portal, portal_spec, tiny_dicom

SOURCE = "midrc-ricord-1c"
EXPORT = "1c_mdai_rsna_project_MwBeK3Nr_annotations_labelgroup_all_2021-01-08-164102.json"


def labels_of(folder: Path):
    ctx = SourceContext(portal_spec(SOURCE), folder, list_files(folder))
    return list(read_labels(ctx)), list(ctx.problems)


def expected_labels(export: dict, images_by_uid: dict[str, list[str]]) -> Counter:
    """(image, reader, label name with single spaces) per annotation, from the JSON read here."""
    names = {}
    for group in export["labelGroups"]:
        for label in group["labels"]:
            names[label["id"]] = (group["name"], " ".join(label["name"].split()))
    found = Counter()
    for item in export["datasets"][0]["annotations"]:
        for image in images_by_uid.get(item["StudyInstanceUID"], ()):
            found[(image, *names[item["labelId"]])] += 1
    return found


def test_miniature_entries_patients_and_covidx_names(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "ricord")
    dicoms = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.dcm"))
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert sorted(e.path for e in entries) == dicoms and not problems
    by_study = defaultdict(list)
    for path in dicoms:
        by_study[path.rsplit("/", 2)[0]].append(path)
    for entry in entries:
        header = pydicom.dcmread(folder / entry.path, stop_before_pixels=True)
        mrn = entry.path.split("/")[1].removeprefix("MIDRC-RICORD-1C-")
        position = sorted(by_study[entry.path.rsplit("/", 2)[0]]).index(entry.path)
        tail = header.StudyInstanceUID[-5:]
        assert entry.extra["covidx_name"] == f"MIDRC-RICORD-1C-{mrn}-{tail}-{position}.png"
        assert (entry.patient_id, entry.label, entry.view) == (mrn, "covid-19", header.ViewPosition)
        assert entry.extra["study_uid"] == header.StudyInstanceUID
    assert any("." in e.extra["covidx_name"].rsplit("-", 2)[1] for e in entries)  # site 440808's dotted tail


def test_miniature_every_reader_label_lands_on_every_image_of_its_study(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "ricord")
    export = json.loads((folder / EXPORT).read_text())
    images = defaultdict(list)
    for path in folder.rglob("*.dcm"):
        images[pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID].append(
            path.relative_to(folder).as_posix()
        )
    expected = expected_labels(export, images)
    assert len({reader for _image, reader, _name in expected}) >= 4  # several readers on one study

    found, problems = labels_of(folder)

    def rater(group: str) -> str:  # "Default group" -> "default", "Tiger" -> "tiger"
        return group.lower().removesuffix(" group")

    got = Counter((a.targets[0][1], a.rater) for a in found)
    want = Counter()
    for (image, reader, _name), count in expected.items():
        want[(image, rater(reader))] += count
    assert got == want
    assert not problems
    grades = [a for a in found if a.kind == "severity"]
    mild = sum(n for (_i, _r, name), n in expected.items() if name.startswith("Mild Opacities"))
    assert sum(a.value == "1" for a in grades) == mild
    assert {a.name for a in found} - {"opacity_grade"} <= {
        "typical_appearance",
        "indeterminate_appearance",
        "atypical_appearance",
        "negative_for_pneumonia",
        "invalid_study",
    }


def test_an_unreadable_export_is_one_error_and_the_images_still_index(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "ricord")
    (folder / EXPORT).write_text('{"labelGroups": [')
    found, problems = labels_of(folder)
    assert not found and [p.level for p in problems] == ["error"] and p_named(problems, EXPORT)
    entries, _ = run_parser(portal_spec(SOURCE), folder)
    assert entries


def p_named(problems, path: str) -> bool:
    return all(p.path == path for p in problems)


@needs_portal
def test_real_export_labels_for_twenty_studies_of_the_real_mapping(tmp_path: Path) -> None:
    real = PORTAL / "midrc-ricord-1c"
    export = json.loads((real / EXPORT).read_text())
    mapping = json.loads(
        (real / "COVID-Net/create_ricord_dataset/ricord_patientid_to_studyid_mapping.json").read_text()
    )
    annotated = {a["StudyInstanceUID"] for a in export["datasets"][0]["annotations"]}
    chosen = [(mrn, uid) for mrn, uids in mapping.items() for uid in uids if uid in annotated][:20]
    folder = tmp_path / "ricord"
    (folder).mkdir()
    (folder / EXPORT).write_bytes((real / EXPORT).read_bytes())
    images = defaultdict(list)
    for number, (mrn, uid) in enumerate(chosen):
        relative = (
            f"MIDRC-RICORD-1C/MIDRC-RICORD-1C-{mrn}/01-01-1901-NA-XR CHEST-{uid[-5:]}/1.000000-NA-{number:05d}/1-1.dcm"
        )
        tiny_dicom(folder / relative, Modality="CR", ViewPosition="AP", StudyInstanceUID=uid)
        images[uid].append(relative)
    expected = expected_labels(export, images)
    found, problems = labels_of(folder)
    assert len(found) == sum(expected.values()) and not problems
    raw = [label["name"] for group in export["labelGroups"] for label in group["labels"]]
    names = {re.sub(r"\s+", " ", name) for name in raw}
    assert any("  " in name for name in raw)  # the real double spaces
    assert len(names) == 8
