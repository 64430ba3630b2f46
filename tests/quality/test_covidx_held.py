"""Every image COVIDx lists and we hold is served by the covidx scheme with COVIDx's label and split (issue 14).

The real ieee8023 sample holds ``ansu-publish-ahead-of-print-...-g001-d.png`` (COVIDx 9A
patient 426b, COVID-19, train) without a ``metadata.csv`` row. Expected values come from
the real COVIDx label files and the real ``images/`` folder, read here with plain Python.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from covid19_images.loaders import load
from covid19_images.manifest.build import read_manifest
from covid19_images.quality.report import build_report, render_text
from tests.conftest import build_synced_root

pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("covidx-held")]
pytest.importorskip("torch")

IEEE = "ieee8023-covid-chestxray"
ANSU = "ansu-publish-ahead-of-print-10.1097.sla.0000000000003955-g001-d.png"
SERVED = {"covid-19": "covid-19", "positive": "covid-19", "pneumonia": "pneumonia", "normal": "normal"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("covidx-held"), mirrors, (IEEE, "covidx-splits"))


def listed_and_held(root: Path, version: str) -> dict[str, tuple[str, str]]:
    """file name -> (split, our label) for every ieee8023 ("cohen") entry of ``version`` whose file we hold."""
    images = {p.name for p in (root / "datasets" / IEEE / "images").iterdir()}
    found: dict[str, tuple[str, str]] = {}
    for split in ("train", "test"):
        text = (root / "datasets" / "covidx-splits" / "labels" / f"{split}_COVIDx{version}.txt").read_text()
        for line in text.splitlines():
            parts = line.split()
            if parts and parts[-1] == "cohen" and parts[-3] in images and parts[-2].lower() in SERVED:
                found[parts[-3]] = (split, SERVED[parts[-2].lower()])
    return found


def test_the_file_without_a_metadata_row_is_in_the_manifest_as_unknown(root: Path) -> None:
    manifest = read_manifest(root)
    row = manifest[manifest["path"].str.endswith("/" + ANSU)]
    assert row["label"].tolist() == ["unknown"]


@pytest.mark.parametrize("version", ["9A", "9B"])
def test_every_listed_held_image_is_served_with_covidx_label_and_split(root: Path, version: str) -> None:
    expected = listed_and_held(root, version)
    assert ANSU in expected and len(expected) > 5
    served: dict[str, tuple[str, str]] = {}
    for split in ("train", "test"):
        if split not in {s for s, _label in expected.values()}:
            continue  # the sample holds no image of this split
        dataset = load("xray", "torch", root=root, split=split, split_scheme=f"covidx:{version}")
        items = dataset.manifest
        for path, label in zip(items["path"], items["label"], strict=True):
            if path.startswith(f"datasets/{IEEE}/"):
                served[path.rsplit("/", 1)[-1]] = (split, label)
    assert {name: served.get(name) for name in expected} == expected


def test_report_counts_listed_held_and_served_per_covidx_version(root: Path) -> None:
    report = build_report(root, read_manifest(root), privacy=False)
    by_version = {item["version"]: item for item in report["covidx"]}
    assert set(by_version) >= {"9A", "9B"}
    for version in ("9A", "9B"):
        item = by_version[version]
        assert item["held"] >= len(listed_and_held(root, version))
        assert item["served"] >= len(listed_and_held(root, version))
        assert item["listed"] > item["held"]
    assert "COVIDx images listed / held here / fetched / served" in render_text(report)
