"""The Arrow copy of the manifest sync wrote: read back as the CSV reads, and believed only for that very file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from covid19_images.core.atomic import write_atomic
from covid19_images.core.schema import MANIFEST_COLUMNS
from covid19_images.manifest import integrity
from covid19_images.manifest.io import MANIFEST_FILE, MANIFEST_IDENTITY, MANIFEST_SHA256, manifest_bytes, read_manifest
from covid19_images.manifest.manifest_copy import COPY_FILE, STATE_FILE, load_copy, save_copy
from covid19_images.manifest.source_cache import cache_dir_of
from tests.conftest import swap_contents_and_resync

#: cells a CSV round trip could change: separators, quotes, line breaks, spaces, words pandas reads as missing
AWKWARD = ["a,b", 'say "hi"', "two\nlines", " padded ", "NA", "null", "nan", "", "ü 漢字 \u200b", "0012", "1e5"]


def _written(root: Path, frame: pd.DataFrame, cache: Path) -> None:
    """What sync's ``write_manifest`` does for the manifest: record, file, then the copy."""
    path = root / MANIFEST_FILE
    data = manifest_bytes(frame)
    digest = integrity.write_record(path, data, len(frame))
    write_atomic(path, data)
    _saved_later(cache, path, frame, digest)


def _saved_later(cache: Path, manifest: Path, frame: pd.DataFrame, digest: str) -> None:
    """``save_copy``, its state file stamped a second after the manifest: as when writing the copy
    took longer than a clock tick (here both may fall in one tick, which makes the copy racy)."""
    save_copy(cache, manifest, frame, digest)
    later = manifest.stat().st_ctime_ns + 1_000_000_000
    os.utime(cache / STATE_FILE, ns=(later, later))


def _awkward_frame(rows: int = 40) -> pd.DataFrame:
    values = {
        column: [AWKWARD[(row + k) % len(AWKWARD)] for row in range(rows)] for k, column in enumerate(MANIFEST_COLUMNS)
    }
    values["source"] = [f"s{row % 3}" for row in range(rows)]
    values["path"] = [f"datasets/s{row % 3}/{row:04d}.png" for row in range(rows)]
    return pd.DataFrame(values)


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, Path]:
    root, cache = tmp_path / "root", tmp_path / "cache"
    (root / "manifests").mkdir(parents=True)
    _written(root, _awkward_frame(), cache)
    return root, cache


def test_the_copy_reads_as_the_csv_does(written: tuple[Path, Path]) -> None:
    root, cache = written
    copy = load_copy(cache, root / MANIFEST_FILE)
    assert copy is not None
    from_csv = read_manifest(root)
    pd.testing.assert_frame_equal(copy, from_csv)
    assert copy.attrs[MANIFEST_SHA256] == from_csv.attrs[MANIFEST_SHA256]
    assert copy.attrs[MANIFEST_IDENTITY] == integrity.file_identity((root / MANIFEST_FILE).stat())
    # a file changed less than a second ago could change again unseen: the CSV read vouches for no identity
    assert MANIFEST_IDENTITY not in from_csv.attrs


def test_a_copy_whose_state_is_not_younger_than_the_manifest_is_racy(written: tuple[Path, Path]) -> None:
    root, cache = written
    manifest = root / MANIFEST_FILE
    same_tick = manifest.stat().st_ctime_ns
    os.utime(cache / STATE_FILE, ns=(same_tick, same_tick))
    assert load_copy(cache, manifest) is None


def test_a_manifest_restored_edited_or_unvouched_is_read_from_its_csv(written: tuple[Path, Path]) -> None:
    root, cache = written
    path = root / MANIFEST_FILE
    data = path.read_bytes()
    write_atomic(path, data)  # the same bytes, restored as another file (git checkout, a copy)
    assert load_copy(cache, path) is None
    _written(root, _awkward_frame(), cache)
    assert load_copy(cache, path) is not None
    with open(path, "ab") as handle:  # edited in place
        handle.write(b"")
        os.utime(path)
    assert load_copy(cache, path) is None
    _written(root, _awkward_frame(), cache)
    integrity.record_path(path).unlink()  # its record deleted: the CSV path explains what is wrong
    assert load_copy(cache, path) is None


@pytest.mark.parametrize("damage", ["cut copy", "no copy", "state garbled", "state of another version"])
def test_a_damaged_copy_is_never_believed(written: tuple[Path, Path], damage: str) -> None:
    root, cache = written
    copy, state = cache / COPY_FILE, cache / STATE_FILE
    if damage == "cut copy":
        copy.write_bytes(copy.read_bytes()[: copy.stat().st_size // 2])
    elif damage == "no copy":
        copy.unlink()
    elif damage == "state garbled":
        state.write_text("{", encoding="utf-8")
    else:
        state.write_text(json.dumps({**json.loads(state.read_text()), "version": 0}), encoding="utf-8")
    assert load_copy(cache, root / MANIFEST_FILE) is None
    assert load_copy(None, root / MANIFEST_FILE) is None


def test_a_copy_of_another_schema_is_not_taken(written: tuple[Path, Path]) -> None:
    root, cache = written
    state = cache / STATE_FILE
    facts = json.loads(state.read_text())
    state.write_text(json.dumps({**facts, "columns": facts["columns"][:-1]}), encoding="utf-8")
    assert load_copy(cache, root / MANIFEST_FILE) is None


def test_sync_keeps_the_copy_and_the_next_sync_builds_from_it_as_from_the_csv(synced_root) -> None:
    import pyarrow.feather as feather

    root = synced_root(["ieee8023-covid-chestxray", "figure1-xray"])
    cache = cache_dir_of(root)
    manifest = root / MANIFEST_FILE
    # the sync kept a copy of this very file: its digest, its identity, its frame
    facts = json.loads((cache / STATE_FILE).read_text())
    record = json.loads(integrity.record_path(manifest).read_text())
    assert facts["sha256"] == record["sha256"]
    assert facts["identity"] == list(integrity.file_identity(manifest.stat()))
    kept = feather.read_table(cache / COPY_FILE)
    assert kept.to_pydict() == read_manifest(root).to_dict(orient="list")
    # stamped as a copy written a tick later (here the write may take less than one)
    later = manifest.stat().st_ctime_ns + 1_000_000_000
    os.utime(cache / STATE_FILE, ns=(later, later))
    copy = load_copy(cache, manifest)
    assert copy is not None
    pd.testing.assert_frame_equal(copy, read_manifest(root))
    # another root: its manifest is another file, so its copy is not believed and it reads the CSV
    twin = root.parent / "twin"
    shutil.copytree(root, twin, symlinks=True)
    assert load_copy(cache_dir_of(twin), twin / MANIFEST_FILE) is None
    before = manifest.read_bytes()
    for each in (root, twin):  # a change upstream: the build starts from the previous manifest
        images = sorted((each / "datasets" / "figure1-xray").rglob("*.jpg"))[:2]
        swap_contents_and_resync(each, *images)
    assert manifest.read_bytes() != before
    for name in ("manifest.csv", "manifest.csv.integrity", "problems.csv", "annotations.csv"):
        assert (root / "manifests" / name).read_bytes() == (twin / "manifests" / name).read_bytes(), name
    assert load_copy(cache, manifest) is not None and load_copy(cache_dir_of(twin), twin / MANIFEST_FILE) is not None


def test_the_sync_after_a_sync_starts_from_the_copy(synced_root) -> None:
    """What the next sync calls its previous manifest is the copy: one left out of a doctored copy
    (which the manifest's identity and digest still vouch for) comes back as added."""
    from covid19_images.sync.run import sync

    root = synced_root(["figure1-xray"])
    cache, manifest = cache_dir_of(root), root / MANIFEST_FILE
    previous = read_manifest(root)
    left_out = previous["path"].iloc[-1]
    _saved_later(cache, manifest, previous.iloc[:-1], previous.attrs[MANIFEST_SHA256])
    images = sorted((root / "datasets" / "figure1-xray").rglob("*.jpg"))[:2]
    data_a, data_b = images[0].read_bytes(), images[1].read_bytes()
    images[0].write_bytes(data_b)
    images[1].write_bytes(data_a)
    report = sync(root, offline=True, progress=False)
    added = report.changes["figure1-xray"].added
    assert added == [left_out]
