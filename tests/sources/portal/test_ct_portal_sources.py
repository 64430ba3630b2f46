"""The CT portal sources of issue 22, fetched from the loopback portal as users get them, then synced.

MosMedData (a URL), STOIC2021 (an S3 bucket, listed page by page), COVID-CT-MD (figshare), COVIDx
CT-3A (Kaggle) and Zenodo 3757476 are served in their portals' wire formats from their miniatures,
pinned, fetched and built. Expected values come from the fetched files, read here with plain
rules (folder names, the CSV module, nibabel), not from the parsers.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import nibabel
import numpy as np
import pandas as pd
import pytest

from covid19_images.manifest.build import read_manifest
from covid19_images.sources.portal.lock import current_digest, read_lock
from covid19_images.sources.registry import load_registry
from covid19_images.sync.run import sync
from covid19_images.testing.portal_miniatures import fetched_miniature_root, servable
from covid19_images.testing.portal_server import running_with_kaggle_token

CT_SOURCES = ["covid19-ct-seg", "mosmeddata", "stoic2021", "covid-ct-md", "covidx-ct"]
pytestmark = pytest.mark.xdist_group("ct-portal")


def build_ct_portal_root(root: Path) -> Path:
    """``root``: a git data root with the CT portal sources pinned and fetched from a loopback portal, synced."""
    with running_with_kaggle_token("ct-token") as server:
        server.state.s3_page = 2  # STOIC's listing comes in pages, as S3 sends 1,000 keys at a time
        fetched_miniature_root(root, server, CT_SOURCES)
        listings = server.requests_for("stoic2021-training.s3.amazonaws.com/?")
    assert len(listings) >= 2, listings  # more than one page was asked for
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = sync(root, offline=True, progress=False)
    assert not report.failed, report.summary()
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ct_portal_root(tmp_path_factory.mktemp("ct-portal") / "root")


def fetched(root: Path, source: str) -> list[str]:
    base = root / "datasets" / source
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))


def rows_of(root: Path, source: str) -> pd.DataFrame:
    manifest = read_manifest(root)
    return manifest[manifest["source"] == source]


def annotations(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "manifests/annotations.csv", dtype=str, keep_default_na=False)


def test_every_ct_source_is_served_by_its_portal_not_placed_by_hand(root: Path) -> None:
    registry = load_registry(root)
    assert all(servable(registry[name]) for name in CT_SOURCES)  # fetched from the portal, none placed by hand
    for name in CT_SOURCES:
        lock = read_lock(root, name)
        assert lock.entries and all(e.locator.startswith("https://") for e in lock.entries), name
        assert set(rows_of(root, name)["source_commit"]) == {current_digest(root, name)}, name
        assert registry[name].is_portal
    stoic = read_lock(root, "stoic2021")
    # no checksum is published: size and our sha256 pin each object
    assert {e.portal_hash for e in stoic.entries} == {""}
    assert all(e.size > 0 and len(e.sha256) == 64 for e in stoic.entries)


def test_mosmed_rows_grades_and_masks_follow_the_folders(root: Path) -> None:
    studies = [p for p in fetched(root, "mosmeddata") if "/studies/" in p]
    rows = rows_of(root, "mosmeddata")
    assert sorted(rows["path"]) == sorted(f"datasets/mosmeddata/{p}" for p in studies)
    assert set(rows["format"]) == {"nifti"}
    notes = annotations(root)
    grades = notes[(notes["source"] == "mosmeddata") & (notes["kind"] == "severity")]
    by_image = dict(zip(rows["image_id"], rows["path"], strict=True))
    own = grades[grades["image_id"].isin(by_image)]
    for image_id, value in zip(own["image_id"], own["value"], strict=True):
        assert value == by_image[image_id].split("/studies/CT-")[1][0]  # CT-<n>/ -> n
    assert sorted(own["image_id"]) == sorted(rows["image_id"])
    # the grade (a study-level score) reaches COVIDx CT's slice of study_0255 through the identity edge ...
    manifest = read_manifest(root)
    slice_row = manifest[manifest["path"].str.endswith("/study_0255-0002.png")]
    assert set(grades[grades["image_id"].isin(slice_row["image_id"])]["value"]) == {"1"}
    # ... but the volume's per-slice masks do not: the slice has one frame, the mask volume six
    assert not set(slice_row["image_id"]) & set(notes[notes["kind"] == "mask"]["image_id"])
    for path, label in zip(rows["path"], rows["label"], strict=True):
        assert label == ("normal" if "/CT-0/" in path else "covid-19")
    masks = notes[(notes["source"] == "mosmeddata") & (notes["kind"] == "mask")]
    mask_file = next(p for p in fetched(root, "mosmeddata") if "/masks/" in p)
    voxels = np.asarray(nibabel.load(root / "datasets/mosmeddata" / mask_file).dataobj)
    lesion = sorted(int(f) for f in masks[masks["name"] == "lesion"]["frame"])
    assert lesion == [k for k in range(voxels.shape[2]) if voxels[:, :, k].any()] and lesion


def test_stoic_labels_and_outcome_findings_follow_reference_csv(root: Path) -> None:
    with open(root / "datasets/stoic2021/metadata/reference.csv", newline="") as handle:
        reference = {r["PatientID"]: r for r in csv.DictReader(handle)}
    rows = rows_of(root, "stoic2021")
    assert set(rows["format"]) == {"metaimage"}
    assert sorted(rows["path"]) == sorted(f"datasets/stoic2021/data/mha/{i}.mha" for i in reference)
    notes = annotations(root)
    notes = notes[notes["source"] == "stoic2021"]
    for row in rows.itertuples():
        patient = row.path.rsplit("/", 1)[1].removesuffix(".mha")
        assert row.label == ("covid-19" if reference[patient]["probCOVID"] == "1" else "other")
        mine = notes[notes["image_id"] == row.image_id]
        assert dict(zip(mine["name"], mine["value"], strict=True)) == {
            "covid19": reference[patient]["probCOVID"],
            "severe": reference[patient]["probSevere"],
        }
        assert int(row.frames) == 6 and int(row.width) == int(row.height) == 16  # the header, read by SimpleITK


def test_covid_ct_md_slice_labels_follow_slice_location_not_file_names(root: Path) -> None:
    import pydicom

    base = root / "datasets/covid-ct-md"
    with open(base / "Index.csv", newline="") as handle:
        index = [r["Folder/ID"] for r in csv.DictReader(handle)]
    labels = np.load(base / "Slice-level-labels-updated-1.npy")
    rows = rows_of(root, "covid-ct-md")
    notes = annotations(root)
    notes = notes[(notes["source"] == "covid-ct-md") & (notes["name"] == "infection")]
    by_image = dict(zip(rows["image_id"], rows["path"], strict=True))
    own = notes[notes["image_id"].isin(by_image)]  # (the label also reaches COVIDx CT's copy of IM0002)
    got = {by_image[i].split("/", 2)[2]: v for i, v in zip(own["image_id"], own["value"], strict=True)}
    expected = {}
    for position, patient in enumerate(index):
        folder = next(p for p in base.glob(f"*/{patient}") if p.is_dir())
        files = sorted(folder.glob("*.dcm"), key=lambda p: float(pydicom.dcmread(p).SliceLocation))
        for rank, path in enumerate(files):
            expected[path.relative_to(base).as_posix()] = str(int(labels[position, rank]))
    assert got == expected
    cap = rows[rows["path"].str.contains("/Cap subjects/")]
    assert set(cap["label"]) == {"pneumonia"} and set(cap["label_detail"]) == {"community-acquired"}


def test_covidx_ct_slices_share_duplicate_group_and_split_with_their_volumes(root: Path) -> None:
    manifest = read_manifest(root)
    covidx = manifest[manifest["source"] == "covidx-ct"]
    joined = 0
    for row in covidx.itertuples():
        targets = json.loads(row.extra).get("same_as", [])
        for target in targets:
            source, name = target.split(":", 1)
            other = manifest[(manifest["source"] == source) & manifest["path"].str.endswith("/" + name)]
            if other.empty:
                continue
            joined += 1
            assert row.dup_group and set(other["dup_group"]) == {row.dup_group}, target
            assert set(other["split"]) == {row.split}, target
    # STOIC (2), MosMed, Zenodo 3757476 and COVID-CT-MD slices of the miniatures all find their volume
    assert joined == 5
