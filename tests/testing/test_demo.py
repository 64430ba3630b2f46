"""``make demo`` on a fresh clone: the miniatures, offline, images from at least eight sources."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.framework, pytest.mark.xdist_group("demo")]
PROJECT = Path(__file__).resolve().parents[2]


def run_demo(*args: str, workdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src"), "COVID19_IMAGES_SHARED": "none"}
    command = [sys.executable, "-m", "covid19_images.testing.demo", *args, "--workdir", str(workdir)]
    return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)


def test_demo_on_the_miniatures_loads_images_from_eight_sources(tmp_path: Path) -> None:
    result = run_demo(workdir=tmp_path / "demo")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.startswith("data: the miniatures"), result.stdout[:300]
    shown = re.findall(r"^  \(\d+, \d+, \d+\) \S+\s+([a-z0-9-]+): datasets/", result.stdout, flags=re.M)
    assert len(set(shown)) >= 8, shown
    # the portal source was pinned and fetched from the loopback portal through insteadOf, and loads
    assert "fetched covid19-ct-seg (zenodo 3757476)" in result.stdout
    assert "covid19-ct-seg" in shown
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


def test_demo_asked_for_missing_samples_says_so(tmp_path: Path) -> None:
    result = run_demo("--shared", str(tmp_path / "nowhere"), workdir=tmp_path / "demo")
    assert result.returncode == 2
    assert "No upstream samples at" in result.stderr and "miniatures" in result.stderr
