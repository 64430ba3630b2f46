"""``make demo`` on a fresh clone: the miniatures, offline, images from at least eight sources."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from covid19_images.sources.registry import load_registry
from tests.manifest.test_covidx_portal import PORTAL, expected, served

pytestmark = [
    pytest.mark.framework,
    pytest.mark.xdist_group("demo"),
    pytest.mark.filterwarnings("ignore::covid19_images.core.medical.MedicalWarning"),
]
PROJECT = Path(__file__).resolve().parents[2]


def run_demo(*args: str, workdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src"), "COVID19_IMAGES_SHARED": "none"}
    command = [sys.executable, "-m", "covid19_images.testing.demo", *args, "--workdir", str(workdir)]
    return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The demo run once on the miniatures: its working folder and what it printed."""
    workdir = tmp_path_factory.mktemp("demo") / "demo"
    return workdir, run_demo(workdir=workdir)


def test_demo_on_the_miniatures_loads_images_from_eight_sources(demo) -> None:
    workdir, result = demo
    tmp_path = workdir.parent
    assert result.returncode == 0, result.stderr[-12000:] + result.stdout[-2000:]  # a crash: every thread's stack
    assert result.stdout.startswith("data: the miniatures"), result.stdout[:300]
    shown = re.findall(r"^  \(\d+, \d+, \d+\) \S+\s+([a-z0-9-]+): datasets/", result.stdout, flags=re.M)
    assert len(set(shown)) >= 8, shown
    # every portal source was pinned and fetched from the loopback portal through insteadOf (BIMCV, a manual
    # source, from a folder standing in for the user's download), and images of each load
    assert "fetched covid19-ct-seg (zenodo 3757476)" in result.stdout
    portal = [name for name, spec in load_registry(PROJECT).items() if spec.is_portal]
    assert len(portal) >= 8
    for name in portal:
        assert re.search(
            rf"^    fetched {name} \(.*verified against manifests/locks/{name}\.lock\.tsv$", result.stdout, re.M
        )
        assert name in shown, name
    assert f"fetched bimcv-covid19-pos (manual: `fetch --from {workdir / 'by-hand'}" in result.stdout
    manifest = (tmp_path / "demo" / "root" / "manifests" / "manifest.csv").read_text().splitlines()
    assert len(manifest) > 100
    # the loaders' defaults: no `unknown` class; every modality has train, val and test items
    for title in ("X-ray", "CT", "ultrasound"):
        pattern = rf"^{title}: \d+ items \(train (\d+), val (\d+), test (\d+)\), classes (.*)$"
        line = re.search(pattern, result.stdout, re.M)
        assert line and all(int(n) > 0 for n in line.groups()[:3]), result.stdout
        assert "'unknown'" not in line.group(4)
    assert "problems, on purpose" in result.stdout
    # a scratch demo outside the clone leaves the clone's pointer alone and says the one setting instead
    root = (tmp_path / "demo" / "root").resolve()
    assert f"Next: export COVID19_IMAGES_ROOT={root}" in result.stdout


def test_covidx_9a_over_the_demo_serves_every_listed_image_its_miniatures_hold(demo) -> None:
    """The benchmark's scheme over the demo's root: every COVIDx 9A image of a portal source the miniatures
    hold is served with COVIDx's split and label (expected: from the label files and the folders, see
    tests/manifest/test_covidx_portal.py), and the torch loader serves its test images."""
    workdir, result = demo
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "root"
    want = expected(root, "9A")
    assert {source for source, _path in want} == set(PORTAL)
    assert served(root, "9A") == want
    from covid19_images.loaders import load

    dataset = load("xray", "torch", root=root, split="test", split_scheme="covidx:9A")
    got = {
        (s, p.removeprefix(f"datasets/{s}/"))
        for s, p in zip(dataset.manifest["source"], dataset.manifest["path"], strict=True)
    }
    test_images = {key for key, (split, _label) in want.items() if split == "test"}
    assert test_images and test_images <= got


def test_the_report_over_the_demo_counts_every_covidx_version_it_holds(demo) -> None:
    """report's COVIDx table over the demo root: COVID-Net's label sets and every release whose source
    the demo fetched (CXR-3, CXR-4 and COVIDx CT's CT-3A), each listed line counted, none an error. A
    release the scheme could not read used to turn the whole table into one error row."""
    import pandas as pd

    from covid19_images.quality.report.compute import build_report

    workdir, result = demo
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "root"
    manifest = pd.read_csv(root / "manifests" / "manifest.csv", dtype=str, keep_default_na=False)
    table = {row.get("version"): row for row in build_report(root, manifest, privacy=False)["covidx"]}
    assert not [row for row in table.values() if "error" in row], table
    assert {"9A", "CXR-3", "CXR-4", "CT-3A"} <= set(table)
    lists = sorted((root / "datasets" / "covidx-ct").glob("*_COVIDx_CT-3A.txt"))
    listed = sum(1 for path in lists for line in path.read_text().splitlines() if line.strip())
    assert lists and table["CT-3A"]["listed"] == listed
    assert table["CT-3A"]["held"] == listed  # every listed slice the miniature holds is matched to its row


def test_demo_asked_for_missing_samples_says_so(tmp_path: Path) -> None:
    result = run_demo("--shared", str(tmp_path / "nowhere"), workdir=tmp_path / "demo")
    assert result.returncode == 2
    assert "No upstream samples at" in result.stderr and "miniatures" in result.stderr
