"""The incremental caches are inputs: a tampered stored index is not trusted, and verify searches afresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covid19_images.manifest.build import MANIFEST_FILE, PROBLEMS_FILE, read_manifest
from covid19_images.manifest.integrity import write_record
from covid19_images.quality.verify import verify
from covid19_images.sync.run import sync
from tests.conftest import build_synced_root

pytestmark = pytest.mark.upstream
SOURCES = ("darshan-xray", "figure1-xray", "zhanglab-pediatric-xray")


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("cache-inputs"), mirrors, SOURCES)


@pytest.fixture
def root(synced: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(synced, copy, symlinks=True)
    return copy


def _cache(root: Path) -> Path:
    import git

    return Path(git.Repo(root).git_dir) / "covid19-images-cache"


def _two_unrelated_rows(manifest: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    usable = manifest[(manifest["dup_group"] == "") & (manifest["phash"].str.len() == 64)]
    first = usable.iloc[0]
    second = usable[usable["label"] != first["label"]].iloc[0]
    return first, second


def test_a_fake_edge_in_the_stored_index_merges_nothing(root: Path, mirrors: Path) -> None:
    before = read_manifest(root)
    a, b = _two_unrelated_rows(before)
    edges_file = _cache(root) / "near-edges.parquet"
    edges = pd.read_parquet(edges_file)
    fake = {
        "a": a["phash"] + a["sha256"],
        "b": b["phash"] + b["sha256"],
        "distance": 2,
        "mse": np.nan,
        "status": "near",
    }
    pd.concat([edges, pd.DataFrame([fake])], ignore_index=True).to_parquet(edges_file, index=False)
    (root / "datasets" / SOURCES[0] / "untracked-note.txt").write_text("a dirty checkout is read again")
    report = sync(root, offline=True, progress=False)
    assert not report.failed, report.summary()
    after = read_manifest(root)
    merged = after[after["image_id"].isin([a["image_id"], b["image_id"]])]
    assert set(merged["dup_group"]) == {""}, "the fake edge must not merge the two pictures"
    assert after[["image_id", "dup_group", "split"]].equals(before[["image_id", "dup_group", "split"]])
    problems = pd.read_csv(root / PROBLEMS_FILE, dtype=str, keep_default_na=False)
    assert problems["message"].str.contains("stored near-duplicate index was not reused").any()
    assert verify(root, progress=False).ok


def test_verify_finds_groups_that_a_fresh_search_does_not_give(root: Path) -> None:
    """A manifest merged through the cache (record rewritten too) fails verify, row by row."""
    manifest = read_manifest(root)
    a, b = _two_unrelated_rows(manifest)
    group = min(a["image_id"], b["image_id"])
    manifest.loc[manifest["image_id"].isin([a["image_id"], b["image_id"]]), "dup_group"] = group
    data = manifest.to_csv(index=False, lineterminator="\n").encode()
    write_record(root / MANIFEST_FILE, data)
    (root / MANIFEST_FILE).write_bytes(data)
    findings = verify(root, progress=False)
    assert not findings.ok
    assert sorted(f["path"] for f in findings.dup_groups) == sorted([a["path"], b["path"]])
    assert {f["stored"] for f in findings.dup_groups} == {group} and {f["fresh"] for f in findings.dup_groups} == {""}
    assert "run `covid19-images sync --offline --rebuild`" in findings.summary()


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1e6", "\uff15"])
def test_a_budget_variable_that_is_not_a_positive_whole_number_stops_sync_before_it_reads(
    root: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from click.testing import CliRunner

    from covid19_images.cli import main
    from covid19_images.imaging.budget import InvalidSetting

    before = (root / MANIFEST_FILE).read_bytes()
    monkeypatch.setenv("COVID19_IMAGES_MAX_FRAME_PIXELS", value)
    with pytest.raises(InvalidSetting, match=r"\$COVID19_IMAGES_MAX_FRAME_PIXELS=.* is not a positive whole number"):
        sync(root, offline=True, progress=False)
    result = CliRunner().invoke(main, ["sync", "--root", str(root), "--offline", "--quiet"])
    assert result.exit_code == 2 and "COVID19_IMAGES_MAX_FRAME_PIXELS" in result.output
    assert "Traceback" not in result.output
    assert (root / MANIFEST_FILE).read_bytes() == before


def test_the_budgets_are_part_of_the_cache_key_so_a_loss_is_not_cached(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = read_manifest(root)
    monkeypatch.setenv("COVID19_IMAGES_MAX_FRAME_PIXELS", "100")  # valid, and refuses every real picture
    squeezed = sync(root, offline=True, progress=False, allow_shrink=True)
    assert len(read_manifest(root)) < len(before), squeezed.summary()
    monkeypatch.delenv("COVID19_IMAGES_MAX_FRAME_PIXELS")
    restored = sync(root, offline=True, progress=False)
    assert not restored.failed, restored.summary()
    after = read_manifest(root)
    assert sorted(after["image_id"]) == sorted(before["image_id"])


def test_a_registry_entry_edited_between_two_syncs_of_an_unchanged_source_is_read_again(root: Path) -> None:
    """The cache key holds the registry entry: the same commit under other options gives other rows."""
    import json

    import yaml

    before = read_manifest(root)
    darshan = before[before["source"] == "darshan-xray"]
    augmented = darshan["extra"].map(lambda text: json.loads(text or "{}").get("augmented") is True)
    assert augmented.any() and not augmented.all()
    registry = yaml.safe_load((root / "sources.yaml").read_text())
    registry["sources"] = [
        {"name": s, "options": {"include_augmented": False}} if s == "darshan-xray" else s for s in registry["sources"]
    ]
    (root / "sources.yaml").write_text(yaml.safe_dump(registry, sort_keys=False))
    report = sync(root, offline=True, progress=False, allow_shrink=True)
    assert "darshan-xray" not in (report.build.reused if report.build else [])
    after = read_manifest(root)
    assert sorted(after.loc[after["source"] == "darshan-xray", "image_id"]) == sorted(
        darshan.loc[~augmented, "image_id"]
    )
    assert after[after["source"] != "darshan-xray"]["image_id"].tolist() == (
        before[before["source"] != "darshan-xray"]["image_id"].tolist()
    )


def test_another_pseudonym_key_gives_other_patient_ids_although_the_source_is_cached(
    tmp_path: Path, mirrors: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pseudonym key decides the patient ids of DICOM sources, so it is part of every source's
    cache key: with it left out, the second sync would reuse the rows pseudonymised under the old key.

    The pos-case checkout is de-identified first (no PatientID, PatientName, StationName, committed
    in the checkout, as a de-identified release is): a source whose files carry identifying values
    is never cached, one without them is, and its patients are pseudonyms of the StudyInstanceUID.
    """
    import json

    import git
    import pydicom

    from covid19_images.core.pseudonyms import PSEUDONYM_KEY_ENV, pseudonym

    monkeypatch.delenv(PSEUDONYM_KEY_ENV, raising=False)
    source = "covid19-pos-case"
    root = build_synced_root(tmp_path, mirrors, [source])
    checkout = root / "datasets" / source
    for path in sorted(checkout.rglob("*")):
        if path.is_file() and ".git" not in path.parts:
            try:
                header = pydicom.dcmread(path)
            except pydicom.errors.InvalidDicomError:
                continue
            for keyword in ("PatientID", "PatientName", "StationName"):
                if keyword in header:
                    delattr(header, keyword)
            header.save_as(path)
    repo = git.Repo(checkout)
    repo.git.add("-A")
    repo.git.commit("-m", "de-identified", "--author", "t <t@example.invalid>")

    def expected(key: str | None) -> dict[str, str]:
        """``source:pseudonym(StudyInstanceUID)`` of each DICOM row's file, under ``key`` (set for what follows)."""
        if key is None:
            monkeypatch.delenv(PSEUDONYM_KEY_ENV, raising=False)
        else:
            monkeypatch.setenv(PSEUDONYM_KEY_ENV, key)
        rows = read_manifest(root)
        return {
            path: f"{source}:{pseudonym(str(pydicom.dcmread(root / path).StudyInstanceUID), source)}"
            for path in rows.loc[rows["format"] == "dicom", "path"]
        }

    def patients() -> dict[str, str]:
        rows = read_manifest(root)
        return dict(zip(rows["path"], rows["patient_id"], strict=True))

    for _ in range(2):  # the second sync reuses the cached source
        report = sync(root, offline=True, progress=False)
        assert not report.failed, report.summary()
    assert source in json.loads((_cache(root) / "sources.json").read_text())["sources"]  # the source is cached
    first = patients()
    assert first and first == expected(None)
    other = expected("a site's own secret key")  # sets the key for the sync below
    report = sync(root, offline=True, progress=False)
    assert not report.failed, report.summary()
    assert patients() == other
    assert not set(other.values()) & set(first.values())
    expected(None)
    sync(root, offline=True, progress=False)
    assert patients() == first
