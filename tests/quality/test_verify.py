"""``covid19-images verify``: missing, changed, undecodable and unreferenced files fail; upstream extras do not."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from covid19_images.cli import main
from covid19_images.manifest.build import read_manifest
from covid19_images.quality.verify import verify
from tests.conftest import build_synced_root

pytestmark = pytest.mark.upstream
SOURCES = ("ieee8023-covid-chestxray", "zhanglab-pediatric-xray")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("verify"), mirrors, SOURCES)


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    """A private copy: these tests damage files."""
    copy = tmp_path / "root"
    shutil.copytree(pristine, copy, symlinks=True)
    return copy


def run(root: Path, *args: str):
    return CliRunner().invoke(main, ["verify", "--root", str(root), "--quiet", *args])


def test_pristine_checkout_passes_and_upstream_extras_are_only_noted(pristine: Path) -> None:
    result = run(pristine, "--decode")
    assert result.exit_code == 0, result.output
    findings = verify(pristine, progress=False)
    assert findings.ok and findings.checked == len(read_manifest(pristine))
    # ieee8023 ships lung masks and a picture metadata.csv never names: upstream's, not a mismatch
    unused = {Path(item["path"]).parent.name for item in findings.upstream_unused}
    assert "lungVAE-masks" in unused
    assert "not indexed by their parser" in result.output


def test_changed_missing_and_unreferenced_files_fail(root: Path) -> None:
    manifest = read_manifest(root).sort_values("path")
    zhang = manifest[manifest["source"] == "zhanglab-pediatric-xray"]
    changed, missing = zhang["path"].iloc[0], zhang["path"].iloc[1]
    with open(root / changed, "ab") as handle:
        handle.write(b"\0")
    (root / missing).unlink()
    stray = root / "datasets" / "zhanglab-pediatric-xray" / "train" / "NORMAL" / "notes.txt"  # an image by its bytes
    Image.new("L", (32, 32), 128).save(stray, "PNG")
    text = root / "datasets" / "zhanglab-pediatric-xray" / "README-local.md"  # not an image: ignored
    text.write_text("local notes\n")

    result = run(root)
    assert result.exit_code == 1, result.output
    assert f"{changed}: sha256" in result.output
    assert "missing: 1" in result.output and missing in result.output
    assert "unreferenced: 1" in result.output and "notes.txt (png, untracked file" in result.output
    assert "README-local.md" not in result.output

    data = json.loads(run(root, "--json").output)
    assert [i["path"] for i in data["changed"]] == [changed]
    assert [i["path"] for i in data["missing"]] == [missing]
    assert [i["path"] for i in data["unreferenced"]] == [stray.relative_to(root).as_posix()]
    assert data["mismatches"] == 3 and data["ok"] is False


def test_decode_finds_a_file_that_no_longer_decodes(root: Path) -> None:
    manifest = read_manifest(root)
    victim = manifest[manifest["format"] == "jpeg"]["path"].iloc[0]
    data = (root / victim).read_bytes()
    (root / victim).write_bytes(data[:200])  # a truncated download
    assert run(root).exit_code == 1  # changed bytes are caught without --decode
    findings = verify(root, decode=True, progress=False)
    assert [i["path"] for i in findings.undecodable] == [victim]
    assert [i["path"] for i in findings.changed] == [victim]


def test_a_checkout_at_another_commit_is_stale(root: Path) -> None:
    folder = root / "datasets" / "ieee8023-covid-chestxray"
    subprocess.run(["git", "-C", str(folder), "checkout", "-q", "HEAD~1"], check=True)
    result = run(root)
    assert result.exit_code == 1
    assert "stale: 1" in result.output and "ieee8023-covid-chestxray: checkout at" in result.output


def test_no_manifest_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["verify", "--root", str(tmp_path)])
    assert result.exit_code != 0 and "no manifest" in result.output
