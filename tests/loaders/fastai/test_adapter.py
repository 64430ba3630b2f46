"""The fastai adapter: DataLoaders whose train/valid are the manifest's train/val rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from covid19_images import load_covid_xray
from tests.conftest import build_synced_root
from tests.loaders.test_loaders_common import XRAY_SOURCES

pytest.importorskip("fastai")
pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("loaders-fastai")]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("loaders-fastai"), mirrors, XRAY_SOURCES)


@pytest.fixture(scope="module")
def dls(root: Path):
    return load_covid_xray("fastai", root=root, bs=4, num_workers=0, image_size=96)


def test_train_and_valid_come_from_the_split_column(dls, root: Path) -> None:
    torch_train = load_covid_xray("torch", root=root, split="train", image_size=96)
    torch_val = load_covid_xray("torch", root=root, split="val", image_size=96)
    manifest = dls.manifest
    assert manifest.loc[~manifest["is_valid"], "image_id"].tolist() == torch_train.manifest["image_id"].tolist()
    assert manifest.loc[manifest["is_valid"], "image_id"].tolist() == torch_val.manifest["image_id"].tolist()
    assert len(dls.train_ds) == len(torch_train) and len(dls.valid_ds) == len(torch_val)
    assert list(dls.vocab) == dls.classes == torch_train.classes
    assert set(dls.test_items["split"]) == {"test"}
    assert not set(dls.test_items["image_id"]) & set(manifest["image_id"])


def test_batches_are_float_images_with_vocab_labels(dls) -> None:
    images, labels = dls.one_batch()
    assert tuple(images.shape) == (4, 3, 96, 96)
    assert images.dtype.is_floating_point and 0.0 <= float(images.min()) <= float(images.max()) <= 1.0
    assert all(0 <= int(y) < len(dls.vocab) for y in labels)
    image, label = dls.valid_ds[0]
    assert dls.vocab[int(label)] == dls.manifest.loc[dls.manifest["is_valid"], "label"].iloc[0]
    assert image.size == (96, 96)


def test_item_and_batch_transforms_and_channels(root: Path) -> None:
    from fastai.vision.all import Normalize, Resize

    dls = load_covid_xray(
        "fastai",
        root=root,
        bs=2,
        num_workers=0,
        channels=1,
        item_tfms=Resize(48),
        batch_tfms=[Normalize.from_stats([0.5], [0.25])],
    )
    images, _ = dls.one_batch()
    assert tuple(images.shape) == (2, 1, 48, 48)
    assert float(images.min()) < 0.0, "Normalize ran on the batch"


def test_worker_processes_and_test_dl(root: Path) -> None:
    dls = load_covid_xray("fastai", root=root, bs=8, num_workers=2, image_size=64)
    seen = sum(len(y) for _, y in dls.train)
    assert seen == (len(dls.train_ds) // 8) * 8  # fastai drops the last partial training batch
    test = dls.test_dl(dls.test_items, with_labels=True)
    images, labels = test.one_batch()
    assert images.shape[1:] == (3, 64, 64)
    assert [dls.vocab[int(y)] for y in labels] == dls.test_items["label"].iloc[: len(labels)].tolist()


def test_cache_serves_the_same_pixels(root: Path, tmp_path: Path) -> None:
    import torch

    plain = load_covid_xray("fastai", root=root, bs=4, num_workers=0, image_size=64, shuffle=False)
    cached = load_covid_xray(
        "fastai", root=root, bs=4, num_workers=0, image_size=64, shuffle=False, cache=True, cache_dir=tmp_path
    )
    a, b = plain.valid.one_batch(), cached.valid.one_batch()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_show_batch_runs(dls) -> None:
    import matplotlib

    matplotlib.use("Agg")
    dls.show_batch(max_n=4)


@pytest.mark.parametrize("split", ["val", "test", None])
def test_a_single_split_is_refused_with_the_reason(root: Path, split: str | None) -> None:
    # DataLoaders hold train and valid together; asking for one split (or every row) cannot be honoured
    with pytest.raises(ValueError, match="test_dl") as info:
        load_covid_xray("fastai", root=root, split=split)
    assert f"split={split!r}" in str(info.value)
