"""Two releases around an upstream change: changelog, tags, CITATION.cff, Croissant, loading a version back.

The root holds ieee8023, synced from a mirror at its March 2020 snapshot and released as
2026.11; the upstream then moves to its June 2020 snapshot, sync commits it, and 2026.12 is
released. Expected values are computed here from the manifests git holds at each tag (read
with ``git show`` and pandas, not with the code under test).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from covid19_images.cli import main as cli
from covid19_images.sources.registry import load_registry
from covid19_images.sync.run import sync
from covid19_images.testing.mirrors import build_mirror, mirror_path
from tests.conftest import PROJECT, git, new_root

pytestmark = [pytest.mark.upstream, pytest.mark.xdist_group("release")]
IEEE = "ieee8023-covid-chestxray"
OLD = "ieee8023-covid-chestxray-dataset__pinned-548bb58"
NEW = "ieee8023-covid-chestxray-dataset"
SCHEMA = Path(__file__).parent / "data" / "cff-1.2.0.schema.json"


def _release(root: Path, version: str, date: str) -> None:
    from covid19_images.release.run import release

    release(root, version, date=date, progress=False)


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Path:
    """A root with releases 2026.11 (old upstream snapshot) and 2026.12 (after the upstream moved)."""
    base = tmp_path_factory.mktemp("release")
    url = load_registry(PROJECT)[IEEE].url
    build_mirror(mirror_path(base / "mirror", url), [shared / OLD])
    root = new_root(base / "root", [IEEE])
    assert not sync(root, mirror=base / "mirror", progress=False, commit=True).failed
    _release(root, "2026.11", "2026-11-30")
    build_mirror(mirror_path(base / "mirror", url), [shared / OLD, shared / NEW])
    assert not sync(root, mirror=base / "mirror", progress=False, commit=True).failed
    _release(root, "2026.12", "2026-12-04")
    return root


def _at(root: Path, version: str, path: str) -> bytes:
    return subprocess.run(["git", "show", f"{version}:{path}"], cwd=root, check=True, capture_output=True).stdout


def _manifest(root: Path, version: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(_at(root, version, "manifests/manifest.csv")), dtype=str, keep_default_na=False)


def _pin(root: Path, version: str) -> str:
    return git("ls-tree", version, f"datasets/{IEEE}", cwd=root).split()[2]


def _section(text: str, version: str) -> str:
    start = text.index(f"## {version} ")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_changelog_section_says_what_the_upstream_change_did(released: Path) -> None:
    old, new = _manifest(released, "2026.11"), _manifest(released, "2026.12")
    added = set(new["path"]) - set(old["path"])
    removed = set(old["path"]) - set(new["path"])
    both = old.merge(new, on="image_id", suffixes=("_a", "_b"))
    relabelled = int((both["label_a"] != both["label_b"]).sum())
    assert added, "the June snapshot adds images"
    text = (released / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.index("## 2026.12 ") < text.index("## 2026.11 "), "newest section first"
    section = _section(text, "2026.12")
    assert "since 2026.11" in section
    assert f"- commit {_pin(released, '2026.11')[:12]} → {_pin(released, '2026.12')[:12]}" in section
    assert (
        f"- +{len(added)} images, −{len(removed)} images, {relabelled} relabelled ({len(old)} → {len(new)} images)"
        in (section)
    )
    # the June sync recorded itself as data (manifests/sync.json, committed with it)
    record = json.loads(_at(released, "2026.12", "manifests/sync.json"))
    (entry,) = record["sources"]
    assert (entry["old"], entry["new"], entry["status"]) == (
        _pin(released, "2026.11"),
        _pin(released, "2026.12"),
        "updated",
    )
    assert (entry["added"], entry["removed"], entry["relabelled"]) == (len(added), len(removed), relabelled)
    first = _section(text, "2026.11")
    assert f"- new source, pinned at {_pin(released, '2026.11')[:12]}: {len(old)} images" in first
    # problems new in 2026.12 are counted against 2026.11's problems.csv; a problem whose metadata
    # line moved (rows added above it) is the same problem
    problems = [
        pd.read_csv(io.BytesIO(_at(released, v, "manifests/problems.csv")), dtype=str, keep_default_na=False)
        for v in ("2026.11", "2026.12")
    ]
    keys = [set(map(tuple, p[["level", "source", "path", "message"]].to_numpy())) for p in problems]
    fresh = sum(
        1 for row in problems[1][["level", "source", "path", "message"]].to_numpy() if tuple(row) not in keys[0]
    )
    gone = sum(1 for row in problems[0][["level", "source", "path", "message"]].to_numpy() if tuple(row) not in keys[1])
    assert f"{fresh} new problem(s)" in section
    assert (f"- {gone} problem(s) of the previous release no longer reported" in section) == (gone > 0)


def test_each_release_is_an_annotated_tag_on_a_commit_holding_its_files(released: Path) -> None:
    for version in ("2026.11", "2026.12"):
        assert git("cat-file", "-t", version, cwd=released) == "tag"
        files = git("ls-tree", "-r", "--name-only", version, cwd=released).splitlines()
        assert {"CHANGELOG.md", "CITATION.cff", "manifests/croissant.json", "manifests/sync.json"} <= set(files)
        cff = yaml.safe_load(_at(released, version, "CITATION.cff"))
        assert cff["version"] == version
    assert git("rev-list", "-n1", "2026.12", cwd=released) == git("rev-parse", "HEAD", cwd=released)
    assert git("status", "--porcelain", cwd=released) == ""
    assert git("remote", cwd=released) == "", "release never adds or pushes to a remote"


def test_citation_cff_validates_against_the_cff_1_2_schema(released: Path) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    cff = yaml.safe_load((released / "CITATION.cff").read_text(encoding="utf-8"))
    errors = [e.message for e in validator.iter_errors(cff)]
    assert not errors, errors
    assert cff["date-released"] == "2026-12-04"
    assert [r["title"].split(":")[0] for r in cff["references"]] == [IEEE]
    citation = load_registry(PROJECT)[IEEE].citation.split()[0]
    assert citation in cff["references"][0]["notes"]
    # the schema is strict enough to catch a broken file (the check can fail)
    del cff["authors"]
    assert list(validator.iter_errors(cff))


def test_collection_croissant_validates_and_mlcroissant_iterates_the_manifest(released: Path) -> None:
    mlc = pytest.importorskip("mlcroissant")
    path = released / "manifests/croissant.json"
    dataset = mlc.Dataset(jsonld=str(path))  # raises mlc.ValidationError on any error
    assert not dataset.metadata.ctx.issues.errors
    manifest = _manifest(released, "2026.12")
    records = list(dataset.records("images"))
    assert sorted(r["images/image_id"].decode() for r in records) == sorted(manifest["image_id"])
    by_id = {r["images/image_id"].decode(): r for r in records}
    row = manifest.iloc[0]
    assert by_id[row["image_id"]]["images/split"].decode() == row["split"]
    assert by_id[row["image_id"]]["images/width"] == int(row["width"])
    labels = {r["labels/name"] for r in dataset.records("labels")}
    assert labels == {"covid-19", "pneumonia", "normal", "other", "unknown"}
    doc = json.loads(path.read_text(encoding="utf-8"))
    files = {f["contentUrl"]: f["sha256"] for f in doc["distribution"]}
    assert files["manifest.csv"] == hashlib.sha256((released / "manifests/manifest.csv").read_bytes()).hexdigest()
    assert doc["version"] == "2026.12"
    assert doc["rai:dataLimitations"] and "negative scan means nothing" in doc["rai:dataLimitations"][0]
    assert any("confound" in b for b in doc["rai:dataBiases"])


@pytest.mark.parametrize("fmt", ["webdataset", "imagefolder"])
def test_export_croissant_validates_and_mlcroissant_iterates_its_records(
    released: Path, tmp_path: Path, fmt, monkeypatch
) -> None:
    mlc = pytest.importorskip("mlcroissant")
    from etils import epath

    from covid19_images.export import export

    # mlcroissant 1.1 extracts archives under a name made from the shard's file name alone, shared
    # by every export (and by other tests): each run gets its own folder
    monkeypatch.setattr("mlcroissant._src.operation_graph.operations.extract.EXTRACT_PATH", epath.Path(tmp_path))

    out = tmp_path / fmt
    export(out, fmt, root=released, labels="all")
    dataset = mlc.Dataset(jsonld=str(out / "croissant.json"))
    assert not dataset.metadata.ctx.issues.errors
    rows = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    records = list(dataset.records("images"))
    assert [r["images/export_path"].decode() for r in records] == list(rows["export_path"])
    assert [r["images/label_index"] for r in records] == [int(v) for v in rows["label_index"]]
    # the pictures themselves, decoded by mlcroissant, one per exported item
    pictures = list(dataset.records("image_files"))
    names = sorted(r["image_files/file_name"].decode() for r in pictures)
    assert names == sorted(Path(p).name for p in rows["export_path"])
    first = next(r for r in pictures if r["image_files/file_name"].decode() == Path(rows["export_path"][0]).name)
    assert first["image_files/image"].size == (int(rows["width"][0]), int(rows["height"][0]))
    doc = json.loads((out / "croissant.json").read_text(encoding="utf-8"))
    assert doc["version"] == "2026.12", "an export made at a release names it"
    hashes = {f["contentUrl"]: f["sha256"] for f in doc["distribution"] if f["@type"] == "cr:FileObject"}
    written = [p for p in out.iterdir() if p.suffix in (".tar", ".csv")]
    assert written
    for file in written:
        assert hashes[file.name] == hashlib.sha256(file.read_bytes()).hexdigest()


def test_a_version_loads_its_own_rows_and_splits_after_a_newer_release(released: Path) -> None:
    from covid19_images import load_covid_xray, load_manifest
    from covid19_images.manifest.versions import UnknownVersion
    from covid19_images.sync.versions import VersionMismatch

    old = _manifest(released, "2026.11")
    loaded = load_manifest(released, version="2026.11")
    assert sorted(loaded["image_id"]) == sorted(old["image_id"])
    assert dict(zip(loaded["image_id"], loaded["split"], strict=True)) == dict(
        zip(old["image_id"], old["split"], strict=True)
    )
    current = load_manifest(released)
    assert set(current["image_id"]) != set(old["image_id"])
    with pytest.raises(UnknownVersion, match=r"its releases: 2026\.11, 2026\.12"):
        load_manifest(released, version="2025.1")
    # the checkout is at 2026.12's pin: serving 2026.11's files from it is refused, with the command
    with pytest.raises(VersionMismatch) as refused:
        load_covid_xray("torch", root=released, version="2026.11", split=None, labels="all", image_size=32)
    pin = _pin(released, "2026.11")
    command = next(line for line in str(refused.value).splitlines() if pin in line).split("run: ", 1)[1]
    subprocess.run(command, shell=True, check=True, capture_output=True)
    try:
        dataset = load_covid_xray("torch", root=released, version="2026.11", split=None, labels="all", image_size=32)
        served = dataset.manifest
        assert set(served["image_id"]) <= set(old["image_id"])
        expected = old[old["modality"] == "xray"]
        groups = expected["dup_group"].where(expected["dup_group"] != "", expected["image_id"])
        # one image per duplicate group, every group of 2026.11's X-rays
        assert len(served) == groups.nunique()
        assert set(groups[expected["image_id"].isin(set(served["image_id"]))]) == set(groups)
        splits = dict(zip(old["image_id"], old["split"], strict=True))
        assert all(splits[i] == s for i, s in zip(served["image_id"], served["split"], strict=True))
        image, _ = dataset[0]
        assert tuple(image.shape[-2:]) == (32, 32)
    finally:
        git("checkout", "--quiet", "--detach", _pin(released, "2026.12"), cwd=released / "datasets" / IEEE)
    assert git("status", "--porcelain", cwd=released) == ""


def test_status_version_and_diff_on_the_command_line(released: Path) -> None:
    runner = CliRunner()
    status = runner.invoke(cli, ["status", "--root", str(released), "--version", "2026.11"])
    assert status.exit_code == 0, status.output
    assert f"the version pins {_pin(released, '2026.11')[:12]}" in status.output
    assert f"checkout --detach {_pin(released, '2026.11')}" in status.output
    same = runner.invoke(cli, ["status", "--root", str(released), "--version", "2026.12"])
    assert "matches" in same.output and "checkout --detach" not in same.output
    unknown = runner.invoke(cli, ["status", "--root", str(released), "--version", "2027.1"])
    assert unknown.exit_code == 2 and "2026.11, 2026.12" in unknown.output

    diff = runner.invoke(cli, ["diff", "--root", str(released), "2026.11", "2026.12"])
    assert diff.exit_code == 0, diff.output
    old, new = _manifest(released, "2026.11"), _manifest(released, "2026.12")
    for split in ("train", "val", "test"):
        a, b = set(old.loc[old["split"] == split, "image_id"]), set(new.loc[new["split"] == split, "image_id"])
        assert f"| {split} | {len(a)} | {len(b)} | {len(a & b)} | {len(a - b)} | {len(b - a)} |" in diff.output
    test_same = set(old.loc[old["split"] == "test", "image_id"]) == set(new.loc[new["split"] == "test", "image_id"])
    assert ("The test set is identical" in diff.output) == test_same
    assert ("The test set changed" in diff.output) != test_same
