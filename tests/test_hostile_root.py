"""A data root treated carelessly (issue 14): damaged manifests, hand-edited paths, umask, wrong folders.

Real syncs of a real git upstream; the damage is what git, a full disk or an editor leaves.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from covid19_images.loaders import load
from covid19_images.loaders._select import UnsafeManifestPath
from covid19_images.manifest.build import MANIFEST_FILE, PROBLEMS_FILE, read_manifest, write_atomic
from covid19_images.manifest.integrity import DamagedManifest, record_path, write_record
from tests.badinputs import SHARED, real_image
from tests.hostile_world import CLASS, World, make_world, mounted_tmpfs, source_env

pytestmark = [pytest.mark.upstream, pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/upstream")]


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = make_world(tmp_path)
    (w.tree / CLASS / "b.jpeg").write_bytes(real_image("000002-14.jpg"))
    w.publish()
    w.sync()
    assert w.rows() == ["a.jpeg", "b.jpeg"]
    return w


def cli(*args: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "covid19_images.cli", *args, "--root", str(root)],
        capture_output=True,
        text=True,
        env=source_env(),
        check=False,
    )


def _conflicted(text: str) -> str:
    """What ``git merge`` writes when two branches relabelled the same row differently."""
    header, first, *rest = text.splitlines(keepends=True)
    other = first.replace(",covid-19,", ",pneumonia,")
    assert other != first
    return header + "<<<<<<< HEAD\n" + first + "=======\n" + other + ">>>>>>> other-branch\n" + "".join(rest)


def test_a_manifest_with_merge_conflict_markers_never_loads(world: World) -> None:
    path = world.root / MANIFEST_FILE
    path.write_text(_conflicted(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(DamagedManifest, match="merge-conflict marker") as caught:
        load("xray", "torch", root=world.root, split=None)
    assert str(path) in str(caught.value)
    for command in (("report", "--no-privacy"), ("verify",), ("status",)):
        out = cli(*command, root=world.root)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr and "merge-conflict" in out.stderr and "manifest.csv" in out.stderr


@pytest.mark.parametrize("cut", ["mid-row", "whole-rows"])
def test_a_truncated_manifest_never_loads(world: World, cut: str) -> None:
    path = world.root / MANIFEST_FILE
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    path.write_bytes(data[: len(data) - 40] if cut == "mid-row" else b"".join(lines[:-1]))
    with pytest.raises(DamagedManifest, match=r"manifest\.csv"):
        read_manifest(world.root)


def test_sync_rebuilds_a_damaged_manifest_and_keeps_it_aside(world: World) -> None:
    path = world.root / MANIFEST_FILE
    path.write_text(_conflicted(path.read_text(encoding="utf-8")), encoding="utf-8")
    report = world.sync(offline=True)
    assert any("unreadable" in note and "merge-conflict" in note for note in report.notes), report.notes
    assert world.rows() == ["a.jpeg", "b.jpeg"]
    assert list((world.root / "manifests").glob("manifest.unreadable-*.csv"))


def test_a_sync_killed_between_record_and_manifest_leaves_a_loadable_manifest(world: World) -> None:
    path = world.root / MANIFEST_FILE
    before = read_manifest(world.root)
    write_record(path, b"image_id\nsomething-else\n")  # the record of a manifest that was never renamed into place
    assert read_manifest(world.root).equals(before)


def test_manifest_rows_outside_the_root_are_refused_at_load(world: World) -> None:
    secret = world.root / "secret.jpeg"
    shutil.copy(world.root / "datasets" / "darsh" / CLASS / "a.jpeg", secret)
    for hostile in ("datasets/darsh/../../secret.jpeg", str(secret), "secret.jpeg"):
        manifest = read_manifest(world.root)
        manifest.loc[0, "path"] = hostile
        data = manifest.to_csv(index=False, lineterminator="\n").encode()
        write_record(world.root / MANIFEST_FILE, data)  # a consistent record: the integrity check is not the guard
        write_atomic(world.root / MANIFEST_FILE, data)
        with pytest.raises(UnsafeManifestPath, match="outside"):
            load("xray", "torch", root=world.root, split=None, check_files=False)


def test_a_symlinked_source_folder_pointing_outside_is_refused_at_load(world: World, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    shutil.copytree(world.root / "datasets" / "darsh", outside)
    shutil.rmtree(world.root / "datasets" / "darsh")
    os.symlink(outside, world.root / "datasets" / "darsh")
    with pytest.raises(UnsafeManifestPath, match="outside"):
        load("xray", "torch", root=world.root, split=None)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_sync_writes_its_files_with_the_users_umask(world: World, umask: int) -> None:
    old = os.umask(umask)
    try:
        world.sync(offline=True, rebuild=True)  # rebuild: an unchanged sync rewrites nothing
    finally:
        os.umask(old)
    for relative in (MANIFEST_FILE, PROBLEMS_FILE):
        for path in (world.root / relative, record_path(world.root / relative)):
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    assert record_path(world.root / MANIFEST_FILE).exists()


def test_status_and_sync_outside_a_git_repository_say_so_without_a_traceback(world: World, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(world.root / "sources.yaml", plain / "sources.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, expected in ((plain, "not a git repository"), (empty, "no sources.yaml")):
        for command in (("status",), ("sync", "--offline")):
            out = cli(*command, root=folder)
            assert out.returncode == 2, (command, out.stdout, out.stderr)
            assert "Traceback" not in out.stderr and expected in out.stderr, out.stderr


def test_a_lying_apng_upstream_is_one_problem_and_the_rest_builds(world: World, tmp_path: Path) -> None:
    from tests.imaging.test_budgets import apng_claiming

    shutil.copy(apng_claiming(tmp_path, 2**31), world.tree / CLASS / "lie.png")
    world.publish()
    report = world.sync()
    about = {(p.source, p.path): p.message for p in report.build.problems}  # paths are source-relative
    assert "over the budget" in about[("darsh", "ValData/COVID-19/lie.png")]
    assert world.rows() == ["a.jpeg", "b.jpeg"]
    assert len(load("xray", "torch", root=world.root, split=None)) == 2


def test_a_manifest_frame_count_over_the_budget_is_refused_at_load_naming_the_file(world: World) -> None:
    from covid19_images.imaging.budget import OverBudget

    manifest = read_manifest(world.root)
    manifest.loc[0, "format"] = "png"
    manifest.loc[0, "frames"] = str(2**31)
    data = manifest.to_csv(index=False, lineterminator="\n").encode()
    write_record(world.root / MANIFEST_FILE, data)  # a manifest written before the budget existed
    write_atomic(world.root / MANIFEST_FILE, data)
    with pytest.raises(OverBudget, match=r"a\.jpeg \(2,147,483,648 frames\)"):
        load("xray", "torch", root=world.root, split=None)


def test_sync_on_a_read_only_root_says_so_and_changes_nothing(world: World, tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "ro", "size=64m") as mount:
        shutil.copytree(world.root, mount / "root", symlinks=True)
        before = (mount / "root" / MANIFEST_FILE).read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        out = cli("sync", "--offline", root=mount / "root")
        assert out.returncode == 2, (out.stdout, out.stderr[-2000:])
        assert "Traceback" not in out.stderr and "read-only" in out.stderr.lower(), out.stderr
        assert (mount / "root" / MANIFEST_FILE).read_bytes() == before
        assert cli("status", root=mount / "root").returncode == 0
