"""``release`` refuses a root it cannot describe truthfully, and leaves it as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from covid19_images.cli import main as cli
from covid19_images.manifest import integrity
from covid19_images.release.run import ReleaseRefused, release
from covid19_images.sources.registry import load_registry
from covid19_images.sync.run import sync
from covid19_images.testing.mirrors import build_mirror, mirror_path
from tests.conftest import PROJECT, git, new_root

pytestmark = pytest.mark.upstream
IEEE = "ieee8023-covid-chestxray"
OLD = "ieee8023-covid-chestxray-dataset__pinned-548bb58"
NEW = "ieee8023-covid-chestxray-dataset"


@pytest.fixture
def root(tmp_path: Path, shared: Path) -> Path:
    build_mirror(mirror_path(tmp_path / "mirror", load_registry(PROJECT)[IEEE].url), [shared / OLD])
    root = new_root(tmp_path / "root", [IEEE])
    assert not sync(root, mirror=tmp_path / "mirror", progress=False, commit=True).failed
    return root


def _unchanged(root: Path, head: str) -> None:
    assert git("rev-parse", "HEAD", cwd=root) == head
    assert git("tag", cwd=root) == ""
    assert not (root / "CHANGELOG.md").exists() and not (root / "CITATION.cff").exists()


def test_release_refuses_a_dirty_tree_then_releases_once_clean(root: Path) -> None:
    head = git("rev-parse", "HEAD", cwd=root)
    (root / "notes.txt").write_text("scratch\n")
    with pytest.raises(ReleaseRefused, match=r"not clean \(notes.txt\)"):
        release(root, "2026.11", progress=False)
    _unchanged(root, head)
    (root / "notes.txt").unlink()
    # a modified file inside a source checkout is a dirty tree too
    image = next((root / "datasets" / IEEE / "images").iterdir())
    original = image.read_bytes()
    image.write_bytes(original + b"\0")
    with pytest.raises(ReleaseRefused, match="not clean"):
        release(root, "2026.11", progress=False)
    _unchanged(root, head)
    image.write_bytes(original)
    runner = CliRunner()
    preview = runner.invoke(cli, ["release", "--root", str(root), "--dry-run", "--quiet", "2026.11"])
    assert preview.exit_code == 0, preview.output
    assert "## 2026.11 (" in preview.output and "dry run: nothing written" in preview.output
    _unchanged(root, head)
    refused = runner.invoke(cli, ["release", "--root", str(root), "--quiet", "2026/11"])
    assert refused.exit_code == 1 and "not a calendar version" in refused.output
    release(root, "2026.11", date="2026-11-30", progress=False)
    assert git("tag", cwd=root) == "2026.11"
    with pytest.raises(ReleaseRefused, match="already exists"):
        release(root, "2026.11", progress=False)
    with pytest.raises(ReleaseRefused, match=r"not newer than the latest release 2026\.11"):
        release(root, "2026.9", progress=False)
    with pytest.raises(ReleaseRefused, match="not a calendar version"):
        release(root, "v1.0", progress=False)


def test_release_refuses_when_verify_fails_on_a_clean_tree(root: Path) -> None:
    # a committed manifest that names a file the checkout does not hold: clean tree, failing verify
    manifest = root / "manifests/manifest.csv"
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace("/images/", "/images/missing-", 1)
    data = "".join(lines).encode("utf-8")
    integrity.write_record(manifest, data)
    manifest.write_bytes(data)
    git("commit", "-qam", "hand-edited manifest", cwd=root)
    head = git("rev-parse", "HEAD", cwd=root)
    with pytest.raises(ReleaseRefused, match="verify` fails"):
        release(root, "2026.11", progress=False)
    _unchanged(root, head)
    assert git("status", "--porcelain", cwd=root) == ""


def test_a_refused_upstream_update_is_recorded_by_sync_and_listed_by_the_next_release(
    root: Path, shared: Path, tmp_path: Path
) -> None:
    release(root, "2026.11", date="2026-11-30", progress=False)
    pinned = git("ls-tree", "HEAD", f"datasets/{IEEE}", cwd=root).split()[2]
    # the upstream rewrites its history: the pinned commit is gone, sync refuses and keeps the pin
    build_mirror(mirror_path(tmp_path / "mirror", load_registry(PROJECT)[IEEE].url), [shared / NEW])
    report = sync(root, mirror=tmp_path / "mirror", progress=False, commit=True)
    assert [u.status for u in report.updates] == ["refused"]
    record = json.loads(git("show", "HEAD:manifests/sync.json", cwd=root))
    assert record["sources"][0]["status"] == "refused" and record["sources"][0]["new"] == pinned
    assert "no longer contains the pinned commit" in record["sources"][0]["message"]
    result = release(root, "2026.12", date="2026-12-04", progress=False)
    assert "### Upstream updates refused or failed (kept at their pin)" in result.section
    assert f"- {IEEE} (refused): " in result.section and "--allow-rewrite" in result.section
    assert f"- commit {pinned[:12]} (unchanged)" not in result.section, "nothing else changed"
    assert f"Unchanged: {IEEE}." in result.section
