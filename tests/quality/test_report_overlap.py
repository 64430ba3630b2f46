"""``report``'s overlap table: for every pair of sources, the pictures and the patients both hold."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest

from covid19_images.manifest.build import build_manifest, write_manifest
from covid19_images.quality.report import build_report, render_text
from covid19_images.quality.report.overlap import source_overlap
from covid19_images.sources.registry import load_registry
from covid19_images.testing.portal_miniatures import fetched_miniature_root
from covid19_images.testing.portal_server import running_with_kaggle_token

#: miniatures built to overlap: RSNA names its NIH original (a published identity), SIIM re-encodes a
#: RICORD-1c picture and holds another study of that SIIM patient, COVID-QU-Ex copies within itself
NAMES = ["nih-chestxray14-sample", "rsna-pneumonia", "midrc-ricord-1c", "siim-covid19-detection", "covid-qu-ex"]
pytestmark = pytest.mark.xdist_group("report-overlap")


def test_hand_made_manifest_counts_pictures_and_patients_per_pair() -> None:
    manifest = pd.DataFrame(
        {
            "source": ["a", "b", "b", "c", "a", "c", "b"],
            "path": ["1", "2", "3", "4", "5", "6", "7"],
            "patient_id": ["a:p", "b:q", "b:q", "c:r", "a:s", "", "b:t"],
            "dup_group": ["g1", "g1", "", "", "g2", "g2", ""],
            "split_group": ["a:p", "a:p", "a:p", "c:r", "a:s", "a:s", "b:t"],
        }
    )
    got = {(r["source_a"], r["source_b"]): r for r in source_overlap(manifest)}
    assert list(got) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert got[("a", "b")] == {
        "source_a": "a", "source_b": "b", "shared_pictures": 1, "picture_images_a": 1, "picture_images_b": 1,
        "shared_patient_groups": 1, "patients_a": 1, "patients_b": 1, "patient_images_a": 1, "patient_images_b": 2,
    }  # fmt: skip
    assert (got[("a", "c")]["shared_pictures"], got[("a", "c")]["patients_b"]) == (1, 1)  # c's row has no patient
    assert got[("b", "c")]["shared_pictures"] == got[("b", "c")]["shared_patient_groups"] == 0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    warnings.simplefilter("ignore")
    root = tmp_path_factory.mktemp("overlap") / "root"
    with running_with_kaggle_token("overlap-token") as server:
        fetched_miniature_root(root, server, NAMES)
    write_manifest(root, build_manifest(root, load_registry(root), progress=False))
    yield root


def brute_force(manifest: pd.DataFrame, a: str, b: str, group: str) -> tuple[int, int, int]:
    """(groups both sources hold, images of a in them, images of b in them), row by row."""
    of_a = set(manifest.loc[(manifest["source"] == a) & (manifest[group] != ""), group])
    of_b = set(manifest.loc[(manifest["source"] == b) & (manifest[group] != ""), group])
    both = of_a & of_b
    in_both = manifest[manifest[group].isin(both)]
    return len(both), int((in_both["source"] == a).sum()), int((in_both["source"] == b).sum())


def test_miniatures_built_to_overlap_give_the_overlap_of_every_pair(root: Path) -> None:
    manifest = pd.read_csv(root / "manifests/manifest.csv", dtype=str, keep_default_na=False)
    report = build_report(root, manifest, privacy=False)
    got = {(r["source_a"], r["source_b"]): r for r in report["source_overlap"]}
    assert set(got) == set(combinations(sorted(NAMES), 2))
    for (a, b), record in got.items():
        pictures = brute_force(manifest, a, b, "dup_group")
        patients = brute_force(manifest, a, b, "split_group")
        assert (record["shared_pictures"], record["picture_images_a"], record["picture_images_b"]) == pictures
        assert (record["shared_patient_groups"], record["patient_images_a"], record["patient_images_b"]) == patients
    ricord_siim = got[("midrc-ricord-1c", "siim-covid19-detection")]
    assert ricord_siim["shared_pictures"] == 1
    # the SIIM patient of the copied picture has a second study: the patient group holds more than the picture
    assert ricord_siim["patient_images_b"] > ricord_siim["picture_images_b"]
    assert got[("nih-chestxray14-sample", "rsna-pneumonia")]["shared_pictures"] >= 1
    overlapping = {pair for pair, r in got.items() if r["shared_pictures"] or r["shared_patient_groups"]}
    assert overlapping == {("midrc-ricord-1c", "siim-covid19-detection"), ("nih-chestxray14-sample", "rsna-pneumonia")}
    text = render_text(report)
    assert "midrc-ricord-1c <-> siim-covid19-detection" in text
    assert f"{len(got) - 2} of {len(got)} source pairs share no picture and no patient" in text
