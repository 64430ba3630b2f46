"""`sync` against local bare "upstream" repositories built from the real ieee8023 samples."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from covid19_images.cli import main as cli
from covid19_images.manifest.build import MANIFEST_FILE, read_manifest
from covid19_images.sync.run import sync
from covid19_images.testing.mirrors import build_mirror, mirror_path
from tests.conftest import git

pytestmark = pytest.mark.upstream
IEEE = "ieee8023-covid-chestxray"
OLD = "ieee8023-covid-chestxray-dataset__pinned-548bb58"
NEW = "ieee8023-covid-chestxray-dataset"


def _expected_rows(sample: Path) -> dict[str, dict[str, str]]:
    """Metadata rows whose image is really in the sample, read with the csv module (not our parser)."""
    with open(sample / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected: dict[str, dict[str, str]] = {}
    for row in rows:
        row = {k.strip().lower() if k else "": (v or "").strip() for k, v in row.items()}
        relative = f"{row.get('folder') or 'images'}/{row['filename']}"
        if (sample / relative).is_file() and relative not in expected:
            expected[relative] = row
    return expected


def _orphans(sample: Path) -> set[str]:
    """Images under ``images/`` that no line of metadata.csv names: indexed with label unknown (issue 14)."""
    text = (sample / "metadata.csv").read_text(encoding="utf-8", errors="replace")
    return {f"images/{p.name}" for p in (sample / "images").iterdir() if p.is_file() and p.name not in text}


def _mirror(registry, shared: Path, root: Path, snapshots: list[str]) -> Path:
    mirror_root = root / "mirror"
    build_mirror(mirror_path(mirror_root, registry[IEEE].url), [shared / s for s in snapshots])
    return mirror_root


def test_sync_builds_manifest_that_matches_real_metadata(make_root, registry, shared: Path, tmp_path: Path) -> None:
    mirror_root = _mirror(registry, shared, tmp_path, [NEW])
    root = make_root([IEEE])
    report = sync(root, mirror=mirror_root, progress=False)
    manifest = read_manifest(root)
    expected = _expected_rows(shared / NEW)
    orphans = _orphans(shared / NEW)
    assert len(manifest) == len(expected) + len(orphans) and expected
    by_path = manifest.set_index("path")
    for relative in orphans:
        assert by_path.loc[f"datasets/{IEEE}/{relative}", "label"] == "unknown"
    for relative, row in expected.items():
        got = by_path.loc[f"datasets/{IEEE}/{relative}"]
        assert got["finding"] == row["finding"]
        assert got["patient_id"] == f"{IEEE}:{row['patientid']}"
        if "COVID-19" in row["finding"]:
            assert got["label"] == "covid-19"
        assert got["modality"] == ("ct" if row["modality"] == "CT" else "xray")
        assert got["source_commit"] == report.build.commits[IEEE]
        assert len(got["sha256"]) == 64
    # rows whose file is absent (volumes/*.nii.gz, large files) are reported, not fatal
    problems = pd.read_csv(root / "manifests/problems.csv", dtype=str, keep_default_na=False)
    assert problems["message"].str.contains("volumes/").any()
    assert (problems["source"] == IEEE).all()
    # splits are patient-level: a patient never spans two splits
    assert manifest.groupby("patient_id")["split"].nunique().max() == 1


def test_sync_reports_exactly_the_images_an_upstream_commit_adds(make_root, registry, shared: Path, tmp_path) -> None:
    mirror_root = _mirror(registry, shared, tmp_path, [OLD])
    root = make_root([IEEE])
    first = sync(root, mirror=mirror_root, progress=False)
    before = read_manifest(root)
    assert first.changes[IEEE].added and not first.changes[IEEE].removed

    # upstream moves on: push the June 2020 snapshot on top of the March one
    build_mirror(mirror_path(mirror_root, registry[IEEE].url), [shared / OLD, shared / NEW])
    second = sync(root, mirror=mirror_root, progress=False)
    after = read_manifest(root)
    change = second.changes[IEEE]
    assert sorted(change.added) == sorted(set(after["path"]) - set(before["path"]))
    assert sorted(change.removed) == sorted(set(before["path"]) - set(after["path"]))
    expected_new = {f"datasets/{IEEE}/{p}" for p in [*_expected_rows(shared / NEW), *_orphans(shared / NEW)]}
    assert set(after["path"]) == expected_new
    # only the new files were decoded; unchanged git blobs reuse their facts
    assert second.build.probed == len(set(after["git_blob"]) - set(before["git_blob"]))
    update = next(u for u in second.updates if u.name == IEEE)
    assert update.status == "updated" and update.old != update.new
    # every row names the commit now checked out, as git itself tells it (the build takes it from
    # the update instead of asking again), which is the upstream branch's tip
    tip = git("rev-parse", "refs/heads/master", cwd=mirror_path(mirror_root, registry[IEEE].url)).strip()
    assert set(after["source_commit"]) == {git("rev-parse", "HEAD", cwd=root / "datasets" / IEEE).strip()} == {tip}
    assert set(before["source_commit"]) != {tip}
    assert f"+{len(change.added)} images" in second.summary()
    # existing images keep their split
    common = before.merge(after, on="image_id", suffixes=("_old", "_new"))
    assert (common["split_old"] == common["split_new"]).all()


def test_rebuild_is_byte_identical_and_reuses_hashes(make_root, registry, shared: Path, tmp_path) -> None:
    mirror_root = _mirror(registry, shared, tmp_path, [NEW])
    root = make_root([IEEE])
    sync(root, mirror=mirror_root, progress=False)
    first = (root / MANIFEST_FILE).read_bytes()
    again = sync(root, offline=True, progress=False)
    assert (root / MANIFEST_FILE).read_bytes() == first
    assert again.build.probed == 0
    (root / MANIFEST_FILE).unlink()
    rebuilt = sync(root, offline=True, progress=False)
    assert rebuilt.build.probed > 0
    assert (root / MANIFEST_FILE).read_bytes() == first


def test_sync_commit_records_gitlink_and_manifest(make_root, registry, shared: Path, tmp_path) -> None:
    mirror_root = _mirror(registry, shared, tmp_path, [OLD, NEW])
    root = make_root([IEEE])
    report = sync(root, mirror=mirror_root, progress=False, commit=True)
    assert report.committed
    tree = git("ls-tree", "HEAD", f"datasets/{IEEE}", cwd=root).split()
    assert tree[1] == "commit" and tree[2] == report.build.commits[IEEE]
    assert git("show", f"HEAD:{MANIFEST_FILE}", cwd=root).splitlines()[0].startswith("image_id,")
    message = git("log", "-1", "--format=%B", cwd=root)
    assert f"{IEEE}: none→{tree[2][:12]}" in message
    assert "https://github.com/ieee8023/covid-chestxray-dataset.git" in (root / ".gitmodules").read_text()
    assert git("status", "--porcelain", cwd=root) == ""


def test_offline_commit_records_the_checkouts_it_built_from(make_root, registry, shared: Path, tmp_path) -> None:
    """A sync without ``--commit`` (as ``make demo``'s), then ``sync --offline --commit``: the gitlinks go in too."""
    mirror_root = _mirror(registry, shared, tmp_path, [OLD, NEW])
    root = make_root([IEEE])
    built = sync(root, mirror=mirror_root, progress=False)
    assert git("status", "--porcelain", f"datasets/{IEEE}", cwd=root).startswith("A ")  # staged, not committed
    report = sync(root, progress=False, offline=True, commit=True)
    assert report.committed
    pinned = git("ls-tree", "HEAD", f"datasets/{IEEE}", cwd=root).split()
    assert pinned[1] == "commit" and pinned[2] == built.build.commits[IEEE]
    assert set(read_manifest(root)["source_commit"]) == {pinned[2]}
    assert git("status", "--porcelain", cwd=root) == ""


def test_force_pushed_upstream_is_refused_unless_allowed(make_root, registry, shared: Path, tmp_path) -> None:
    mirror_root = _mirror(registry, shared, tmp_path, [OLD])
    root = make_root([IEEE])
    sync(root, mirror=mirror_root, progress=False, commit=True)
    pinned = git("ls-tree", "HEAD", f"datasets/{IEEE}", cwd=root).split()[2]
    before = (root / MANIFEST_FILE).read_bytes()
    # rewrite history: the new upstream no longer contains the pinned commit
    build_mirror(mirror_path(mirror_root, registry[IEEE].url), [shared / NEW])
    refused = sync(root, mirror=mirror_root, progress=False)
    update = refused.updates[0]
    assert update.status == "refused"
    assert "no longer contains the pinned commit" in update.message and "--allow-rewrite" in update.message
    assert git("ls-files", "-s", f"datasets/{IEEE}", cwd=root).split()[1] == pinned
    assert (root / MANIFEST_FILE).read_bytes() == before
    accepted = sync(root, mirror=mirror_root, progress=False, allow_rewrite=True)
    assert accepted.updates[0].status == "updated"


def test_insteadof_from_environment_works_without_mirror_flag(make_root, registry, shared, tmp_path, monkeypatch):
    """The documented offline path: git's own URL rewriting, configured only through the environment."""
    mirror_root = _mirror(registry, shared, tmp_path, [NEW])
    root = make_root([IEEE])
    monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{mirror_root}/.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "https://github.com/")
    monkeypatch.setenv("GIT_CONFIG_KEY_1", "protocol.file.allow")
    monkeypatch.setenv("GIT_CONFIG_VALUE_1", "always")
    report = sync(root, progress=False)
    assert report.updates[0].status == "added"
    assert len(read_manifest(root)) == len(_expected_rows(shared / NEW)) + len(_orphans(shared / NEW))


def test_local_rewrite_without_permission_is_refused(make_root, registry, shared, tmp_path, monkeypatch) -> None:
    mirror_root = _mirror(registry, shared, tmp_path, [NEW])
    root = make_root([IEEE])
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{mirror_root}/.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "https://github.com/")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    report = sync(root, progress=False)
    assert report.updates[0].status == "refused"
    assert "transport 'file' not allowed" in report.updates[0].message


def test_cli_sync_and_status(make_root, registry, shared, tmp_path) -> None:
    mirror_root = _mirror(registry, shared, tmp_path, [OLD, NEW])
    root = make_root([IEEE])
    runner = CliRunner()
    result = runner.invoke(cli, ["sync", "--root", str(root), "--mirror", str(mirror_root), "--quiet"])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(root)
    assert f"{IEEE}: none→" in result.output and f"+{len(manifest)} images" in result.output
    status = runner.invoke(cli, ["status", "--root", str(root)])
    assert status.exit_code == 0, status.output
    line = next(line for line in status.output.splitlines() if line.startswith(IEEE))
    head = subprocess.run(
        ["git", "-C", str(root / f"datasets/{IEEE}"), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    assert head.stdout.strip()[:12] in line and line.split()[-1] == str(len(manifest))
