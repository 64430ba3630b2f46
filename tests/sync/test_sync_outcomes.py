"""What a real ``sync`` reports and refuses, seen from outside: its summary lines for relabelled
and re-split images, a source folder replaced by a symlink, and the order in which it makes
the manifest durable (fsync of the temporary file, then the rename, then the folder)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from covid19_images.manifest.build import MANIFEST_FILE, PROBLEMS_FILE, read_manifest
from covid19_images.sync.run import sync
from tests.badinputs import Upstream, ieee_row, make_root, real_image, run_git, write_ieee_tree

pytestmark = pytest.mark.upstream

IMAGES = ["000005-5-b.jpg", "000002-11-b.jpg", "000002-14.jpg"]


def tree(folder: Path, patients: tuple[str, str, str], findings: tuple[str, str, str] = ("COVID-19",) * 3) -> Path:
    rows = [ieee_row(n, patientid=p, finding=f) for n, p, f in zip(IMAGES, patients, findings, strict=True)]
    return write_ieee_tree(folder, {n: real_image(n) for n in IMAGES}, rows)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path, Upstream]:
    """One upstream ``alpha`` of three real ieee8023 images (patients 12, 2, 3), synced and committed."""
    mirror = tmp_path / "mirror"
    alpha = Upstream(mirror, "example", "alpha")
    alpha.publish(tree(tmp_path / "a1", ("12", "2", "3")))
    root = make_root(tmp_path / "root", [{"name": "alpha", "url": alpha.url}])
    report = sync(root, mirror=mirror, progress=False, commit=True)
    assert not report.failed, report.summary()
    return root, mirror, alpha


def test_summary_reports_a_relabelled_and_a_moved_image(world, tmp_path: Path) -> None:
    """Upstream relabels one image and files another under an existing patient in another split.

    Splits worked out outside the package from the documented rule (tests/manifest/test_splits.py
    SPLIT_TABLE): patient alpha:12 is in val, alpha:2 in train. Moving the alpha:2 image to
    patient 12 merges two existing groups of one member each; the tie keeps the smaller key,
    alpha:12, so that image moves from train to val.
    """
    root, mirror, alpha = world
    before = read_manifest(root).set_index("path")
    moved_path, relabelled_path = f"images/{IMAGES[1]}", f"images/{IMAGES[2]}"
    assert before.loc[f"datasets/alpha/{moved_path}", "split"] == "train"
    assert before.loc[f"datasets/alpha/images/{IMAGES[0]}", "split"] == "val"
    tip = alpha.publish(tree(tmp_path / "a2", ("12", "12", "3"), ("COVID-19", "COVID-19", "Pneumonia/Viral/SARS")))
    old = run_git("rev-parse", "HEAD:datasets/alpha", cwd=root)
    report = sync(root, mirror=mirror, progress=False)
    assert not report.failed, report.summary()
    lines = report.summary().splitlines()
    assert lines[0] == f"alpha: {old[:12]}→{tip[:12]}, +0 images, −0 images, 1 relabelled, 1 changed split"
    assert lines[1] == "1 existing image(s) changed split:"
    assert lines[2] == (
        f"  alpha/datasets/alpha/{moved_path}: train → val (patient id changed upstream: alpha:2 → alpha:12)"
    )
    after = read_manifest(root).set_index("path")
    assert before.loc[f"datasets/alpha/{relabelled_path}", "label"] == "covid-19"
    assert after.loc[f"datasets/alpha/{relabelled_path}", "label"] == "pneumonia"


def test_source_folder_replaced_by_a_symlink_is_refused_not_indexed(world, tmp_path: Path) -> None:
    """``datasets/alpha`` turned into a symlink to a folder with other pictures: the build keeps
    alpha's previous rows and reports the symlink, it never indexes what the link points at."""
    root, _mirror, _alpha = world
    before = read_manifest(root)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(root / "datasets" / "alpha", elsewhere, symlinks=True)
    extra = "yxppt-2020-02-19_00-51-27_287214-day8.jpg"
    (elsewhere / "images" / extra).write_bytes(real_image(extra))
    with open(elsewhere / "metadata.csv", "a", encoding="utf-8") as handle:
        handle.write(ieee_row(extra, patientid="9") + "\n")
    shutil.rmtree(root / "datasets" / "alpha")
    os.symlink(elsewhere, root / "datasets" / "alpha")

    report = sync(root, offline=True, progress=False)
    after = read_manifest(root)
    assert sorted(after["path"]) == sorted(before["path"]), "the symlink target's extra picture is not indexed"
    assert not any(extra in p for p in after["path"])
    problems = (root / PROBLEMS_FILE).read_text()
    assert "datasets/alpha is a symlink; refused" in problems
    assert any(p.level == "error" and "symlink" in p.message for p in report.build.problems)


@pytest.mark.skipif(sys.platform != "linux", reason="names file descriptors through /proc/self/fd")
def test_sync_fsyncs_each_manifest_file_before_renaming_it(world, tmp_path: Path, monkeypatch) -> None:
    """Record every ``os.fsync`` (by the file its descriptor names) and ``os.replace`` of a real
    sync: each manifest file's temporary is fsynced after its last byte and before the rename,
    and the folder is fsynced after it (a power cut then leaves the old file or the new one)."""
    root, mirror, alpha = world
    alpha.publish(tree(tmp_path / "a2", ("12", "2", "4")))
    events: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        size = os.fstat(fd).st_size
        real_fsync(fd)
        events.append(("fsync", name, str(size)))

    def replace(src, dst, **kwargs) -> None:
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    report = sync(root, mirror=mirror, progress=False)
    assert not report.failed, report.summary()
    for relative in (MANIFEST_FILE, PROBLEMS_FILE):
        final = root / relative
        renames = [i for i, e in enumerate(events) if e[0] == "replace" and Path(e[2]) == final]
        assert renames, f"{relative} was not written by rename"
        at = renames[-1]
        tmp = events[at][1]
        synced = [i for i, e in enumerate(events[:at]) if e[0] == "fsync" and e[1] == tmp]
        assert synced, f"{relative}: its temporary {tmp} was renamed without an fsync"
        assert events[synced[-1]][2] == str(final.stat().st_size), "fsynced before all bytes were written"
        assert any(e[0] == "fsync" and e[1] == str(final.parent) for e in events[at + 1 :]), "folder not fsynced"
