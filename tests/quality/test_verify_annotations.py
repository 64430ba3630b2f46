"""``verify`` checks manifests/annotations.csv: the file is whole, the annotation files it names are unchanged,
and every annotation's image is in the manifest (ieee8023's real severity CSV, box JSON and lungVAE masks)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from covid19_images.cli import main
from covid19_images.manifest.annotations import read_annotations
from covid19_images.manifest.integrity import DamagedManifest, write_record
from covid19_images.quality.verify import verify
from tests.conftest import build_synced_root

pytestmark = pytest.mark.upstream
ANNOTATIONS = "manifests/annotations.csv"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("verify-annotations"), mirrors, ["ieee8023-covid-chestxray"])


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    """A private copy: these tests damage files."""
    copy = tmp_path / "root"
    shutil.copytree(pristine, copy, symlinks=True)
    return copy


def rows(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / ANNOTATIONS, dtype=str, keep_default_na=False)


def run(root: Path, *args: str):
    return CliRunner().invoke(main, ["verify", "--root", str(root), "--quiet", *args])


def test_pristine_annotations_pass_and_are_counted(pristine: Path) -> None:
    findings = verify(pristine, progress=False)
    table = rows(pristine)
    assert findings.ok, findings.summary()
    assert findings.annotations_checked == len(table) > 0
    assert {"severity", "box", "mask"} <= set(table["kind"])
    assert f"and {len(table)} annotations: 0 mismatch" in run(pristine).output


def test_a_changed_and_a_missing_annotation_file_fail(root: Path) -> None:
    table = rows(root)
    severity = table.loc[table["kind"] == "severity", "path"].iloc[0]
    boxes = table.loc[table["kind"] == "box", "path"].iloc[0]
    with open(root / severity, "ab") as handle:  # one more (real-looking) line in the scores file
        handle.write(b"extra.png,1,1\n")
    (root / boxes).unlink()
    result = run(root)
    assert result.exit_code == 1
    assert "annotation files: 2" in result.output
    assert f"{severity} (changed): sha256" in result.output and f"{boxes} (missing)" in result.output
    data = json.loads(run(root, "--json").output)
    assert sorted(i["path"] for i in data["annotation_files"]) == sorted([severity, boxes])
    assert data["mismatches"] == 2  # the images themselves are untouched


def test_a_cut_annotations_csv_is_damaged_for_verify_and_the_loaders(root: Path) -> None:
    path = root / ANNOTATIONS
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[: len(lines) // 2]))  # cut at a row boundary: parses, but rows are lost
    findings = verify(root, progress=False)
    assert len(findings.annotations_damaged) == 1 and not findings.ok
    assert "does not match its integrity record" in findings.annotations_damaged[0]["error"]
    result = run(root)
    assert result.exit_code == 1 and "annotations damaged: 1" in result.output
    with pytest.raises(DamagedManifest, match=r"annotations\.csv"):
        read_annotations(root)
    from covid19_images.loaders import load

    with pytest.raises(DamagedManifest, match=r"annotations\.csv"):
        load("xray", "torch", root=root, split=None, task="severity", score="opacity_mean", rater="mean_of_3")
    # a half-written last row is caught from the bytes alone, record or not
    (root / f"{ANNOTATIONS}.integrity").unlink()
    path.write_bytes(b"".join(lines[:5]) + lines[5][:20])
    assert "file cut short" in verify(root, progress=False).annotations_damaged[0]["error"]
    # a whole, recorded file that lacks a column: readers fill it, verify names it
    path.write_bytes(b"".join(lines))
    write_record(path, path.read_bytes())
    table = rows(root).drop(columns=["rater"])
    write_record(path, table.to_csv(index=False, lineterminator="\n").encode())
    path.write_bytes(table.to_csv(index=False, lineterminator="\n").encode())
    damaged = verify(root, progress=False).annotations_damaged
    assert len(damaged) == 1 and damaged[0]["error"] == "columns missing: rater"
    assert set(read_annotations(root)["rater"]) == {""}


def test_annotations_of_images_not_in_the_manifest_are_orphans(root: Path) -> None:
    table = rows(root)
    severity = table[table["kind"] == "severity"]
    lost = severity["image_id"].iloc[0]
    table.loc[table["image_id"] == lost, "image_id"] = "0000000000000000"  # an image no row holds
    data = table.to_csv(index=False, lineterminator="\n").encode()
    write_record(root / ANNOTATIONS, data)  # a whole, recorded file: only the join is wrong
    (root / ANNOTATIONS).write_bytes(data)
    findings = verify(root, progress=False)
    assert not findings.annotations_damaged and not findings.annotation_files
    orphaned = table[table["image_id"] == "0000000000000000"]
    assert sum(int(i["count"]) for i in findings.annotation_orphans) == len(orphaned) > 0
    assert {i["path"] for i in findings.annotation_orphans} == set(orphaned["path"])
    assert "annotation orphans" in run(root).output


@pytest.mark.parametrize("which", ["annotations", "manifest"])
def test_a_deleted_integrity_record_then_an_edit_is_refused_not_served(root: Path, which: str) -> None:
    """Deleting the record is not a way around it: verify fails, loaders refuse, both name the fix."""
    from covid19_images.loaders import load
    from covid19_images.manifest.build import MANIFEST_FILE

    copy = root
    path = copy / (ANNOTATIONS if which == "annotations" else MANIFEST_FILE)
    path.with_name(path.name + ".integrity").unlink()
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))  # one row less: whole lines, nothing the text alone shows
    fix = "covid19-images sync --offline"
    if which == "annotations":
        damaged = verify(copy, progress=False).annotations_damaged
        assert len(damaged) == 1 and "has no integrity record" in damaged[0]["error"] and fix in damaged[0]["error"]
        result = run(copy)
        assert result.exit_code == 1 and "annotations damaged: 1" in result.output
    else:
        with pytest.raises(DamagedManifest, match="has no integrity record"):
            verify(copy, progress=False)
        result = run(copy)
        assert result.exit_code != 0 and "has no integrity record" in result.output and fix in result.output
    with pytest.raises(DamagedManifest, match=f"has no integrity record.*{fix}"):
        load("xray", "torch", root=copy, split=None, task="severity", score="opacity_mean", rater="mean_of_3")
    # the command the message names brings the root back
    fixed = CliRunner().invoke(main, ["sync", "--root", str(copy), "--offline", "--quiet"])
    assert fixed.exit_code == 0, fixed.output
    assert verify(copy, progress=False).ok
