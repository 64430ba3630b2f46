"""One patient across MIDRC-RICORD-1a, -1b and -1c (TCIA's anonymised MRN, catalog fact ``patient_namespace``):
one split group, one split, counted by ``report``'s overlap table; a later download of one collection that
brings a known patient joins that patient's group without moving anything already assigned."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.uid import generate_uid

from covid19_images.manifest.build import build_manifest, write_manifest
from covid19_images.manifest.splits import explain_split_moves, groups_across_splits
from covid19_images.quality.report.overlap import source_overlap
from covid19_images.sources.portal.fetch import fetch_source
from covid19_images.sources.portal.update import update_lock
from covid19_images.sources.registry import load_registry
from covid19_images.testing.portal_miniatures import fetched_miniature_root, serve_miniature
from covid19_images.testing.portal_server import running_with_kaggle_token
from tests.sources.catalog.portal import miniature_copy

NAMES = ["midrc-ricord-1a", "midrc-ricord-1b", "midrc-ricord-1c", "siim-covid19-detection"]
#: the 1a miniature's patient; a real RICORD-1c MRN too (``ricord_patientid_to_studyid_mapping.json``)
MRN = "419639-000082"
pytestmark = pytest.mark.xdist_group("shared-patients")


def read(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "manifests/manifest.csv", dtype=str, keep_default_na=False)


def add_study_of(folder: Path, mrn: str) -> str:
    """A new 1c study of ``mrn`` in TCIA's layout: another picture (own pixels and UIDs), the same person."""
    template = sorted(folder.rglob("*.dcm"))[0]
    ds = pydicom.dcmread(template)
    study, series = generate_uid(), generate_uid()
    ds.PatientID = ds.PatientName = f"MIDRC-RICORD-1C-{mrn}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    pixels = np.random.default_rng(82).integers(0, 4000, ds.pixel_array.shape).astype(ds.pixel_array.dtype)
    ds.PixelData = pixels.tobytes()
    study_folder = f"02-01-1901-NA-XR CHEST AP PORTABLE-{study[-5:]}"
    relative = f"MIDRC-RICORD-1C/MIDRC-RICORD-1C-{mrn}/{study_folder}/1.000000-NA-1/1-1.dcm"
    (folder / relative).parent.mkdir(parents=True)
    ds.save_as(folder / relative)
    return relative


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The four sources synced; then a new 1c download holding a study of 1a's patient, synced again."""
    warnings.simplefilter("ignore")
    base = tmp_path_factory.mktemp("shared-patients")
    root = base / "root"
    with running_with_kaggle_token("shared-token") as server:
        fetched_miniature_root(root, server, NAMES)
        registry = load_registry(root)
        write_manifest(root, build_manifest(root, registry, progress=False))
        before = read(root)
        folder = miniature_copy("midrc-ricord-1c", base / "1c-next")
        added = add_study_of(folder, MRN)
        spec = registry["midrc-ricord-1c"]
        serve_miniature(server, spec, folder)
        update_lock(root, spec, version=spec.version, progress=False)
        fetch_source(root, spec, progress=False)
    write_manifest(root, build_manifest(root, registry, progress=False))
    yield {"root": root, "before": before, "after": read(root), "added": added}


def test_the_new_1c_study_of_a_1a_patient_takes_that_patient_group_and_split(grown: dict) -> None:
    before, after = grown["before"], grown["after"]
    one_a = after[after["source"] == "midrc-ricord-1a"]
    new = after[(after["source"] == "midrc-ricord-1c") & ~after["image_id"].isin(before["image_id"])]
    assert len(new) == 1 and set(new["patient_id"]) == {f"midrc-ricord-1c:{MRN}"}
    assert set(one_a["patient_id"]) == {f"midrc-ricord-1a:{MRN}"}
    assert set(new["split_group"]) == set(one_a["split_group"]) == {f"midrc-ricord-1a:{MRN}"}
    assert set(new["split"]) == set(one_a["split"])
    assert groups_across_splits(after).empty
    assert explain_split_moves(before, after) == [], "no image already assigned moved"


def test_patients_with_other_mrns_stay_apart(grown: dict) -> None:
    after = grown["after"]
    ricord = after[after["source"].str.startswith("midrc-ricord-") & (after["patient_id"] != "")]
    mrn = ricord["patient_id"].str.split(":", n=1).str[1]
    groups = ricord.groupby(mrn)["split_group"].nunique()
    assert (groups == 1).all()
    # distinct MRNs are distinct groups unless a duplicate picture joins them (SIIM's copy of a 1c picture)
    joined_by_copy = set(after.loc[after["dup_group"] != "", "split_group"])
    per_group = ricord.groupby("split_group").apply(lambda g: set(mrn[g.index]), include_groups=False)
    assert all(len(m) == 1 or key in joined_by_copy for key, m in per_group.items())


def test_the_overlap_table_counts_the_shared_patient_of_1a_and_1c(grown: dict) -> None:
    before = {(r["source_a"], r["source_b"]): r for r in source_overlap(grown["before"])}
    after = {(r["source_a"], r["source_b"]): r for r in source_overlap(grown["after"])}
    pair = ("midrc-ricord-1a", "midrc-ricord-1c")
    assert before[pair]["shared_patient_groups"] == 0
    one_a_images = int((grown["after"]["source"] == "midrc-ricord-1a").sum())
    assert {k: after[pair][k] for k in ("shared_pictures", "shared_patient_groups", "patients_a", "patients_b")} == {
        "shared_pictures": 0, "shared_patient_groups": 1, "patients_a": 1, "patients_b": 1,
    }  # fmt: skip
    assert (after[pair]["patient_images_a"], after[pair]["patient_images_b"]) == (one_a_images, 1)
    # SIIM's copy of a 1c picture still joins SIIM's patient to RICORD's (the join of the picture search)
    assert after[("midrc-ricord-1c", "siim-covid19-detection")]["shared_patient_groups"] >= 1
