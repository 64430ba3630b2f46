"""MIDRC-RICORD-1a/1b: CT series read by header, the MRN as patient, 1a's MD.ai outlines per slice and volume."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pydicom

from covid19_images.sources.catalog.midrc_ricord_1a.annotations import read as read_1a
from covid19_images.sources.parsing import SourceContext, list_files
from tests.conftest import run_parser
from tests.sources.catalog.portal import miniature_copy, portal_spec

EXPORT = "MIDRC-RICORD-1a_annotations_labelgroup_all_2020-Dec-8.json"


def headers(folder: Path) -> dict[str, pydicom.Dataset]:
    return {
        p.relative_to(folder).as_posix(): pydicom.dcmread(p, stop_before_pixels=True) for p in folder.rglob("*.dcm")
    }


def test_both_collections_index_every_slice_with_the_subject_mrn_and_their_label(tmp_path: Path) -> None:
    for name, label in (("midrc-ricord-1a", "covid-19"), ("midrc-ricord-1b", "other")):
        folder = miniature_copy(name, tmp_path / name)
        found = headers(folder)
        entries, problems = run_parser(portal_spec(name), folder)
        assert sorted(e.path for e in entries) == sorted(found) and not problems
        for entry in entries:
            subject = str(found[entry.path].PatientID)
            assert entry.patient_id == subject.split("-", 3)[3]  # MIDRC-RICORD-1A-<MRN>
            assert (entry.modality, entry.label, entry.extra["series_role"]) == ("ct", label, "axial")
            assert entry.extra["series_uid"] == found[entry.path].SeriesInstanceUID


def test_a_fetched_landing_without_the_data_retriever_folders_keeps_the_mrn(tmp_path: Path) -> None:
    source = miniature_copy("midrc-ricord-1b", tmp_path / "mini")
    folder = tmp_path / "landed"
    for path, ds in headers(source).items():  # <PatientID>/<StudyUID>/<SeriesUID>/<file>, as the NBIA API lands
        target = folder / str(ds.PatientID) / str(ds.StudyInstanceUID) / str(ds.SeriesInstanceUID) / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((source / path).read_bytes())
    entries, problems = run_parser(portal_spec("midrc-ricord-1b"), folder)
    assert entries and not problems and {e.patient_id for e in entries} == {"419639-000301"}


def test_1a_outlines_become_slice_boxes_and_global_labels_cover_their_volume_or_study(tmp_path: Path) -> None:
    folder = miniature_copy("midrc-ricord-1a", tmp_path / "1a")
    found = headers(folder)
    export = json.loads((folder / EXPORT).read_text())
    by_sop = {str(ds.SOPInstanceUID): p for p, ds in found.items()}
    labels = {lab["id"]: (g["name"].lower(), lab) for g in export["labelGroups"] for lab in g["labels"]}
    expected_boxes = Counter()
    for item in export["datasets"][0]["annotations"]:
        reader, label = labels[item["labelId"]]
        if label["type"] == "LOCAL" and item["SOPInstanceUID"] in by_sop:
            xs, ys = zip(*item["data"]["vertices"], strict=True)
            expected_boxes[(by_sop[item["SOPInstanceUID"]], reader, (min(xs), min(ys), max(xs), max(ys)))] += 1
    ctx = SourceContext(portal_spec("midrc-ricord-1a"), folder, list_files(folder))
    got = list(read_1a(ctx))
    boxes = [a for a in got if a.kind == "box"]
    assert Counter((a.targets[0][1], a.rater, a.box) for a in boxes) == expected_boxes and len(boxes) == 3
    assert {a.name for a in boxes} == {"infectious_opacity"}
    findings = Counter((a.name, a.targets[0][1]) for a in got if a.kind == "finding")
    every_slice = set(found)
    assert {path for name, path in findings if name == "typical_appearance"} == every_slice  # study scope
    assert {path for name, path in findings if name == "ggo"} == every_slice  # series scope: the volume
    # A_6 names a slice that is not one of its series' slices: no place in the mask volume, a problem on its row
    ((sop, series),) = [
        (a["SOPInstanceUID"], a["SeriesInstanceUID"])
        for a in export["datasets"][0]["annotations"]
        if a["SOPInstanceUID"] and a["SOPInstanceUID"] not in by_sop
    ]
    (problem,) = ctx.problems
    assert problem.row == f"{EXPORT} annotation A_6" and problem.path == EXPORT
    assert sop in problem.message and series in problem.message and "not joined" in problem.message
