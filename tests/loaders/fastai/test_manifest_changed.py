"""fastai's DataLoaders notice that the manifest they were built from is no longer the one on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from covid19_images import load_covid_xray
from covid19_images.loaders._manifest import ManifestChanged
from tests.conftest import build_synced_root, swap_contents_and_resync

pytest.importorskip("fastai")
pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("loaders-fastai")]


def test_a_sync_that_swaps_two_files_stops_dataloaders_built_before_it(tmp_path: Path, mirrors: Path) -> None:
    root = build_synced_root(tmp_path, mirrors, ["darshan-xray"])
    dls = load_covid_xray("fastai", root=root, bs=2, num_workers=0, image_size=16)
    dls.train_ds[0]
    rows = dls.manifest
    other = rows[rows["label"] != rows["label"].iloc[0]].iloc[0]
    a, b = root / rows["path"].iloc[0], root / other["path"]
    swap_contents_and_resync(root, a, b)
    with pytest.raises(ManifestChanged, match="changed since this loader was built"):
        dls.train_ds[0]
