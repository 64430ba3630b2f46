"""fastai: ``DataLoaders`` whose train/valid sets are the manifest's ``train``/``val`` rows.

Built from a standard ``DataBlock`` (ImageBlock + CategoryBlock, ``ColSplitter`` on an
``is_valid`` column derived from the split), so everything fastai users expect keeps
working: ``show_batch``, ``item_tfms``/``batch_tfms``, ``vision_learner``. The only
custom piece is ``get_x``, which reads a manifest row through the shared reader (DCT
downscaled JPEG decode, already resized to ``image_size``) or from the cache; fastai's
``IntToFloatTensor`` then scales to [0, 1] as usual.

``augment=`` runs fastai's ``aug_transforms`` (or the given transform) per item, under a
seed from ``(seed, epoch, image)``: see :mod:`covid19_images.loaders.fastai.augment`;
``dls.set_epoch(n)`` or the ``SetEpoch`` callback moves the epoch.

The ``test`` rows are never in train or valid: they are ``dls.test_items``, to be served
with ``dls.test_dl(dls.test_items, with_labels=True)`` when the model is final.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from covid19_images.loaders._frameworks import guard_tf_then_torchvision, require
from covid19_images.loaders._manifest import selection_for
from covid19_images.loaders._options import Options
from covid19_images.loaders._pixels import load_item
from covid19_images.loaders.cache import PixelCache, open_cache


class RowPixels:
    """``get_x``: one served row -> uint8 pixels (2-D for 1 channel, as PIL expects).

    A module-level class (not a lambda) so DataLoader worker processes can receive it.
    """

    def __init__(
        self, size: tuple[int, int] | None, channels: int, cache: PixelCache | None, stamp: Any = None
    ) -> None:
        self.size, self.channels, self.cache, self.stamp = size, channels, cache, stamp

    def __call__(self, row: pd.Series) -> np.ndarray:
        if self.cache is not None:
            pixels = self.cache.array[int(row["item"])]
        else:
            if self.stamp is not None:
                self.stamp.check()  # the file is read now: is it still the manifest's? (ManifestChanged)
            pixels = load_item(row["file"], int(row["frame"]), row["format"], self.size, self.channels)
        return pixels[:, :, 0] if self.channels == 1 else pixels


def make_fastai_dataloaders(
    options: Options,
    *,
    bs: int = 64,
    item_tfms: Any = None,
    batch_tfms: Any = None,
    num_workers: int | None = None,
    shuffle: bool = True,
    device: Any = None,
) -> Any:
    """fastai ``DataLoaders`` with train and valid from the manifest's split column.

    Args:
        options: the validated shared options; ``split`` must be left out: the DataLoaders hold
            both train and val rows, and asking for None, "val" or "test" is refused.
        bs: batch size.
        item_tfms: fastai item transforms (after the loader's own resize).
        batch_tfms: fastai batch transforms (e.g. ``aug_transforms()``, ``Normalize``).
        num_workers: DataLoader workers; default fastai's.
        shuffle: shuffle the training set each epoch.
        device: where batches go; default fastai's (the GPU when there is one).
    """
    if options.split != "train":  # the default: fastai takes train and val itself; None or "val" is a mistake
        raise ValueError(
            f"fastai DataLoaders hold both train and valid (the manifest's train and val rows); leave split= out "
            f"(got split={options.split!r}). Test rows are in dls.test_items: "
            "dls.test_dl(dls.test_items, with_labels=True)"
        )
    guard_tf_then_torchvision("fastai")
    require("fastai", "fastai")
    augmenting = _augment_hook(options)
    from fastai.data.block import CategoryBlock, ColReader, ColSplitter, DataBlock
    from fastai.vision.core import PILImage, PILImageBW
    from fastai.vision.data import ImageBlock

    selection = selection_for(options, split=None)
    items = selection.items.copy()
    items["item"] = np.arange(len(items))
    cache = None
    if options.cache:
        assert options.image_size is not None
        cache = open_cache(selection, options.image_size, options.channels, options.cache_directory)
    served = items[items["split"].isin(["train", "val"])].reset_index(drop=True)
    served["is_valid"] = served["split"] == "val"
    if not served["is_valid"].any() or served["is_valid"].all():
        raise ValueError(
            f"fastai needs rows in both train and val; this selection has {int((~served['is_valid']).sum())} train "
            f"and {int(served['is_valid'].sum())} val rows under split_scheme {options.split_scheme!r}"
        )
    y_blocks, get_y = (CategoryBlock(vocab=selection.classes),), ColReader("label")
    from covid19_images.loaders.tasks import needs_task_selection  # issue 13

    if needs_task_selection(options):
        from covid19_images.loaders.fastai.tasks import task_block

        y_blocks, get_y = task_block(options, selection.items)
    block = DataBlock(
        blocks=(ImageBlock(cls=PILImage if options.channels == 3 else PILImageBW), *y_blocks),
        n_inp=1,
        get_x=RowPixels(options.image_size, options.channels, cache, selection.stamp),
        get_y=get_y,
        splitter=ColSplitter("is_valid"),
        item_tfms=item_tfms,
        batch_tfms=batch_tfms,
    )
    kwargs: dict[str, Any] = {"bs": bs, "shuffle": shuffle}
    if num_workers is not None:
        kwargs["num_workers"] = num_workers
    if device is not None:
        kwargs["device"] = device
    dls = block.dataloaders(served, **kwargs, **augmenting)
    drop = ["file", "label_index", "item"]
    dls.classes = list(selection.classes)
    # target="multilabel": the multi-hot order (fastai's dls.vocab too), as torch and tf name it
    dls.target_classes = list(dls.vocab) if options.target == "multilabel" else dls.classes
    dls.manifest = served.drop(columns=drop)
    dls.test_items = items[items["split"] == "test"].reset_index(drop=True)
    if augmenting:
        from covid19_images.loaders.fastai.augment import EpochSetter

        dls.set_epoch = EpochSetter(dls)  # train and valid (a test_dl starts at valid's epoch)
    return dls


def _augment_hook(options: Options) -> dict[str, Any]:
    """Issue 12 hook: ``augment`` -> the ``dataloaders`` arguments of per-item keyed augmentation
    (:mod:`covid19_images.loaders.fastai.augment`); ``with_id`` is refused with where the ids
    are (fastai batches carry no strings)."""
    if options.with_id:
        raise ValueError(
            "with_id is not supported by the fastai loader: dls.train.items / dls.valid.items are the manifest "
            "rows (column image_id) in dataset order; use dls.valid.items['image_id'] with get_preds"
        )
    if options.augment is None:
        return {}
    from covid19_images.loaders.fastai.augment import ItemAugmenter, KeyedAugmentDL

    augmenter = ItemAugmenter(options.augment, options.seed, options.augment_splits)
    return {"dl_type": KeyedAugmentDL, "augmenter": augmenter}
