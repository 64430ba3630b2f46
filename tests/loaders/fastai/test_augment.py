"""fastai augmentation keyed per item (loaders.fastai.augment), on the real samples with real fastai.

The augmented tensor of an image must depend on ``seed``, the epoch and the image only: not on
the DataLoader's workers, batch size or order; validation rows are left alone unless asked;
a segmentation mask gets its image's geometric transform.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from covid19_images import load_covid_xray
from tests.conftest import build_synced_root
from tests.loaders.test_loaders_common import XRAY_SOURCES

torch = pytest.importorskip("torch")
pytest.importorskip("fastai")
pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("loaders-fastai")]

SEGMENTATION_SOURCES = ["ieee8023-covid-chestxray", "v7labs-lung-masks"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("fastai-augment"), mirrors, XRAY_SOURCES)


@pytest.fixture(scope="module")
def seg_root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    warnings.simplefilter("ignore")
    return build_synced_root(tmp_path_factory.mktemp("fastai-augment-seg"), mirrors, SEGMENTATION_SOURCES)


def in_index_order(dl, order: list[int] | None = None) -> torch.Tensor:
    """Every item of ``dl`` (images), read in ``order`` (default: 0..n-1), returned in index order."""
    n = len(dl.dataset)
    order = list(range(n)) if order is None else order
    loader = dl.new(shuffle=False, drop_last=False, get_idxs=lambda: list(order))
    images = torch.cat([batch[0].as_subclass(torch.Tensor).cpu() for batch in loader])
    out = torch.empty_like(images)
    out[torch.tensor(order)] = images
    return out


def test_same_seed_and_epoch_same_items_whatever_workers_batch_size_and_order(root: Path) -> None:
    options = {"root": root, "image_size": 48, "augment": "light", "seed": 5}
    one = load_covid_xray("fastai", bs=4, num_workers=0, **options)
    two = load_covid_xray("fastai", bs=3, num_workers=2, **options)
    plain = load_covid_xray("fastai", root=root, image_size=48, bs=4, num_workers=0)
    n = len(one.train.dataset)
    a = in_index_order(one.train)
    b = in_index_order(two.train, list(reversed(range(n))))  # other order, batch size and workers
    assert torch.equal(a, b)
    unchanged = in_index_order(plain.train)
    moved = (a - unchanged).abs().flatten(1).amax(dim=1) > 0.02
    assert moved.float().mean() > 0.6  # p=0.75 for the affine and for the lighting: most items change
    # the shuffled training loader serves exactly these tensors, in its own order
    shuffled = torch.cat([x.as_subclass(torch.Tensor) for x, _ in one.train])
    assert len(shuffled) == (n // 4) * 4
    assert all(any(torch.equal(x, y) for y in a) for x in shuffled[:8])
    one.set_epoch(1)
    c = in_index_order(one.train)
    assert not torch.equal(a, c) and (a - c).abs().flatten(1).amax(dim=1).gt(0.02).float().mean() > 0.5
    two.set_epoch(1)
    assert torch.equal(in_index_order(two.train, list(reversed(range(n)))), c)
    other = load_covid_xray("fastai", **{**options, "seed": 6}, bs=4, num_workers=0)
    assert not torch.equal(in_index_order(other.train), a)


def test_validation_rows_are_not_augmented_unless_asked(root: Path) -> None:
    options = {"root": root, "image_size": 48, "bs": 4, "num_workers": 0}
    plain = in_index_order(load_covid_xray("fastai", **options).valid)
    augmented = load_covid_xray("fastai", augment="light", **options)
    assert torch.equal(in_index_order(augmented.valid), plain)  # not even resampled: left as served
    test = augmented.test_dl(augmented.test_items, with_labels=True)
    plain_test = load_covid_xray("fastai", **options)
    assert torch.equal(in_index_order(test), in_index_order(plain_test.test_dl(plain_test.test_items)))
    asked = load_covid_xray("fastai", augment="light", augment_splits=["train", "val"], **options)
    assert not torch.equal(in_index_order(asked.valid), plain)


def test_light_is_fastai_aug_transforms_without_flips(root: Path) -> None:
    dls = load_covid_xray("fastai", root=root, image_size=32, augment="light", bs=4, num_workers=0)
    names = [type(t).__name__ for t in dls.train.augmenter.function.fs]
    # aug_transforms merges the affine transforms into one and the lighting ones into one
    assert {"Rotate", "Brightness"} <= set(names) and not any("Flip" in n or "Dihedral" in n for n in names)
    assert not any("Rotate" in type(t).__name__ for t in dls.train.after_batch.fs)  # nothing left per batch
    with pytest.raises(ValueError, match="with_id"):
        load_covid_xray("fastai", root=root, with_id=True)


def test_a_fastai_transform_or_a_plain_callable_is_applied_per_item(root: Path) -> None:
    from fastai.vision.augment import Rotate

    options = {"root": root, "image_size": 32, "bs": 4, "num_workers": 0}
    plain = in_index_order(load_covid_xray("fastai", **options).train)
    flipped = load_covid_xray("fastai", augment=lambda image: image.flip(-1), **options)
    assert torch.equal(in_index_order(flipped.train), plain.flip(-1))
    rotate = {"augment": Rotate(max_deg=30, p=1.0), "seed": 2, **options}
    rotated = in_index_order(load_covid_xray("fastai", **rotate).train)
    assert torch.equal(rotated, in_index_order(load_covid_xray("fastai", **{**rotate, "num_workers": 2}).train))
    assert (rotated - plain).abs().flatten(1).amax(dim=1).gt(0.02).all()


def mask_as_image():
    """An item transform that replaces the image by a white-on-black picture of its mask."""
    from fastai.data.core import ItemTransform

    class MaskAsImage(ItemTransform):
        order = 6  # after ToTensor

        def encodes(self, item):
            image, mask = item
            white = (mask.as_subclass(torch.Tensor) > 0).to(torch.uint8) * 255
            return type(image)(white[None].repeat(image.shape[0], 1, 1)), mask

    return MaskAsImage()


def test_a_segmentation_mask_gets_its_images_geometric_transform(seg_root: Path) -> None:
    from fastai.vision.core import TensorMask

    options = {"root": seg_root, "task": "segmentation", "image_size": 64, "bs": 4, "num_workers": 0, "seed": 1}
    plain = load_covid_xray("fastai", item_tfms=[mask_as_image()], **options)
    dls = load_covid_xray("fastai", item_tfms=[mask_as_image()], augment="light", **options)
    n = len(dls.train.dataset)
    assert n >= 4
    loader = dls.train.new(shuffle=False, drop_last=False)
    before = plain.train.new(shuffle=False, drop_last=False)
    moved = 0
    for (image, mask), (_, mask0) in zip(loader, before, strict=True):
        assert isinstance(mask, TensorMask)
        image, mask, mask0 = (t.as_subclass(torch.Tensor) for t in (image, mask, mask0))
        for k in range(len(mask)):
            bright, region = image[k, 0] > 0.5, mask[k] > 0
            if region.sum() < 20:
                continue
            moved += int(not torch.equal(region, mask0[k] > 0))
            assert float((bright & region).sum() / (bright | region).sum()) > 0.9
    assert moved >= n // 2  # most masks did move


def test_set_epoch_callback_follows_fastais_training_loop(root: Path) -> None:
    import fastai.callback.progress  # noqa: F401  (Learner.no_bar)
    from fastai.callback.core import Callback
    from fastai.learner import Learner

    from covid19_images.loaders.fastai.augment import SetEpoch

    dls = load_covid_xray("fastai", root=root, image_size=16, augment="light", bs=8, num_workers=0)
    seen: list[tuple[int, int]] = []

    class Record(Callback):
        def after_epoch(self) -> None:
            seen.append((dls.train.epoch, dls.valid.epoch))

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, len(dls.vocab)))
    learn = Learner(dls, model, loss_func=torch.nn.CrossEntropyLoss(), cbs=[SetEpoch(), Record()])
    with learn.no_logging(), learn.no_bar():
        learn.fit(3, lr=1e-3)
    assert seen == [(0, 0), (1, 1), (2, 2)]


def test_a_plain_callable_gets_the_image_and_its_mask_and_returns_both(seg_root: Path) -> None:
    def mirror(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return image.flip(-1), mask.flip(-1)

    options = {"root": seg_root, "task": "segmentation", "image_size": 64, "bs": 4, "num_workers": 0}
    plain = load_covid_xray("fastai", **options).train.new(shuffle=False, drop_last=False)
    mirrored = load_covid_xray("fastai", augment=mirror, **options).train.new(shuffle=False, drop_last=False)
    batches = 0
    for (image, mask), (image0, mask0) in zip(mirrored, plain, strict=True):
        assert torch.equal(mask.as_subclass(torch.Tensor), mask0.as_subclass(torch.Tensor).flip(-1))
        assert torch.allclose(image.as_subclass(torch.Tensor), image0.as_subclass(torch.Tensor).flip(-1), atol=1e-6)
        assert not torch.equal(mask.as_subclass(torch.Tensor), mask0.as_subclass(torch.Tensor))
        batches += 1
    assert batches > 0
