"""A loader notices that the manifest it was built from is no longer the one on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from covid19_images import load_covid_xray
from covid19_images.loaders._manifest import ManifestChanged
from covid19_images.sync.run import sync
from tests.conftest import build_synced_root, swap_contents_and_resync

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.upstream, pytest.mark.framework]


def test_a_sync_that_swaps_two_files_stops_a_loader_built_before_it(tmp_path: Path, mirrors: Path) -> None:
    root = build_synced_root(tmp_path, mirrors, ["darshan-xray"])
    dataset = load_covid_xray("torch", root=root, split="train", image_size=16, with_id=True)
    dataset[0]
    sync(root, offline=True, progress=False)  # rewrites the manifest with the same bytes
    dataset[0]  # still the manifest it was built from: served
    rows = dataset.manifest
    first = rows[rows["label"] != rows["label"].iloc[0]].iloc[0]
    a, b = root / rows["path"].iloc[0], root / first["path"]
    swap_contents_and_resync(root, a, b)
    with pytest.raises(ManifestChanged, match="changed since this loader was built"):
        dataset[0]
    fresh = load_covid_xray("torch", root=root, split="train", image_size=16, with_id=True)
    assert len(fresh) == len(dataset)


def test_a_sync_that_finishes_while_an_item_is_read_stops_that_item(
    tmp_path: Path, mirrors: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check runs after the item's file was read: a sync landing between a check and the read
    (here, inside the read, deterministically) cannot pair the new file's pixels with the old label."""
    from covid19_images.loaders.torch import adapter

    root = build_synced_root(tmp_path, mirrors, ["darshan-xray"])
    dataset = load_covid_xray("torch", root=root, split="train", image_size=16, with_id=True)
    rows = dataset.manifest
    other = rows[rows["label"] != rows["label"].iloc[0]].iloc[0]
    a, b = root / rows["path"].iloc[0], root / other["path"]
    read = adapter.load_item

    def read_while_a_sync_lands(*args):
        swap_contents_and_resync(root, a, b)
        return read(*args)

    monkeypatch.setattr(adapter, "load_item", read_while_a_sync_lands)
    with pytest.raises(ManifestChanged, match="changed since this loader was built"):
        dataset[0]
    swapped = load_covid_xray("torch", root=root, split="train", image_size=16, with_id=True)  # built after it
    with pytest.raises(ManifestChanged):
        swapped.pixels(0)  # the read swaps the two files back, and syncs
