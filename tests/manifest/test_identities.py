"""Published identities join duplicate groups: RSNA's NIH mapping puts an RSNA image with its NIH original."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from covid19_images.manifest.build import build_manifest
from covid19_images.manifest.identities import identity_edges
from covid19_images.sources.registry import load_registry
from covid19_images.testing.portal_miniatures import fetched_miniature_root
from covid19_images.testing.portal_server import running

RSNA, NIH = "rsna-pneumonia", "nih-chestxray14-sample"
MAPPING = "pneumonia-challenge-dataset-mappings_2018.json"


def built(root: Path) -> pd.DataFrame:
    return build_manifest(root, load_registry(root), progress=False).manifest


def test_rsna_image_joins_its_nih_original_in_one_group_and_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    monkeypatch.setenv("KAGGLE_USERNAME", "tester")  # the Kaggle API token, as users set it
    monkeypatch.setenv("KAGGLE_KEY", "identity-token")
    with running() as server:  # NIH is a git source (a miniature copy), RSNA is fetched from the loopback portal
        server.state.kaggle_auth = ("tester", "identity-token")
        fetched_miniature_root(root, server, [NIH, RSNA])
    pairs = {i["subset_img_id"]: i["img_id"] for i in json.loads((root / "datasets" / RSNA / MAPPING).read_text())}
    manifest = built(root)
    nih_rows = manifest[manifest["source"] == NIH]
    for patient, nih_name in pairs.items():
        rsna_row = manifest[manifest["path"] == f"datasets/{RSNA}/stage_2_train_images/{patient}.dcm"].iloc[0]
        original = nih_rows[nih_rows["path"].str.endswith("/" + nih_name)].iloc[0]
        assert rsna_row["dup_group"] and rsna_row["dup_group"] == original["dup_group"]
        assert rsna_row["split"] == original["split"] and rsna_row["split_group"] == original["split_group"]
    grouped = manifest[manifest["dup_group"] != ""]
    assert set(grouped["source"]) == {NIH, RSNA} and len(grouped) == 2 * len(pairs)

    (root / "datasets" / RSNA / MAPPING).unlink()  # no published identity: the pixels differ, no group
    again = built(root)
    assert not (again["dup_group"] != "").any()


def test_ambiguous_unknown_and_self_targets_give_no_edge() -> None:
    manifest = pd.DataFrame(
        {
            "source": ["a", "b", "b", "b"],
            "path": ["datasets/a/x.dcm", "datasets/b/one/x.png", "datasets/b/two/x.png", "datasets/b/y.png"],
            "extra": [json.dumps({"same_as": ["b:x.png", "c:x.png", "a:x.dcm", "b:y.png", "junk"]}), "", "", ""],
        }
    )
    a, b = identity_edges(manifest)
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 3)]
    manifest.loc[0, "extra"] = json.dumps({"same_as": ["b:one/x.png"]})  # a path is never ambiguous
    a, b = identity_edges(manifest)
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 1)]
