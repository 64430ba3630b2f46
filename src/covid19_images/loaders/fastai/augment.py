"""fastai augmentation keyed per item: the same draws for an image whatever the batch it lands in.

fastai's own ``aug_transforms`` are batch transforms: they run on the collated batch (on the
GPU) and draw from torch's global RNG, so what happens to one image depends on which images
share its batch, on the shuffle and on every earlier draw. This module keeps fastai's
transforms (``AffineCoordTfm``/``LightingTfm`` from ``aug_transforms``, or the user's fastai
``Transform``/``Pipeline``/callable) but applies them to **one item at a time**, inside the
DataLoader (worker) right after the item transforms, as a batch of one, with every random
source (a forked torch RNG, Python's ``random``, NumPy's global state; restored afterwards)
seeded by :func:`covid19_images.loaders.augment.draw_seed` of ``(seed, epoch, image id:frame)``.
The item transforms of that row run under the same seed, so a random ``item_tfms`` (say
``RandomResizedCrop``) is keyed too. Hence the augmented tensor of an image depends only on
``seed``, the epoch and the image: not on ``num_workers``, batch size, shuffle or order.

Which rows: those whose manifest ``split`` is in ``augment_splits`` (default train), in any of
the DataLoaders (``dls.valid`` and ``test_dl`` items stay as they are unless asked). fastai's
``split_idx`` rule (random transforms run on the training set only) is what decides it for
the user's own ``batch_tfms``; this augmentation is keyed on the row's split instead, so
``augment_splits`` can be honoured.

Masks and points: the item's ``TensorMask`` (segmentation) and any ``TensorPoint``/``TensorBBox``
go through the same fastai call as the image, so fastai's affine moves them with it (nearest
for masks) and lighting leaves them alone.

The epoch: ``dls.set_epoch(n)`` (as ``DistributedSampler.set_epoch``), or let fastai's loop
set it: ``Learner(..., cbs=SetEpoch())`` calls it in ``before_epoch``. Without either, every
epoch sees the draws of epoch 0. Workers receive the epoch when fastai starts them at each
iteration (``persistent_workers=True`` would freeze it, as it freezes fastai's own shuffle).

The augmented image goes back to ``uint8`` (rounded) so every item of a batch has the dtype
fastai's ``IntToFloatTensor`` expects; the cost is the usual 8-bit quantisation.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.data.core import Pipeline, TfmdDL, Transform  # fastai re-exports fasttransform
from fastai.torch_core import TensorImage, TensorMask
from fastai.vision.core import TensorPoint

from covid19_images.loaders.augment import LIGHT, draw_seed, item_key

#: item elements that fastai's geometric transforms move with the image
_GEOMETRIC = (TensorImage, TensorMask, TensorPoint)


def fastai_light() -> list[Any]:
    """The "light" preset as fastai ``aug_transforms`` (flips off, no warp, zero padding).

    The fastai loader runs them per item, keyed like the torch and TF ones (see this
    module's docstring), not on the collated batch.
    """
    from fastai.vision.augment import aug_transforms

    return aug_transforms(
        do_flip=False,
        flip_vert=False,
        max_rotate=LIGHT["degrees"],
        min_zoom=LIGHT["scale"][0],
        max_zoom=LIGHT["scale"][1],
        max_lighting=LIGHT["brightness"],
        max_warp=0.0,
        p_affine=0.75,
        p_lighting=0.75,
        pad_mode="zeros",
    )


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Every global RNG a fastai transform may draw from, seeded with ``seed``; restored afterwards."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


class ItemAugmenter:
    """``augmenter(item)``: fastai transforms on one ``(image, target...)`` item as a batch of one.

    ``augment`` is "light" (:func:`covid19_images.loaders.augment.fastai_light`), a fastai
    ``Transform`` or ``Pipeline`` (its random transforms are run as on a training batch,
    ``split_idx=0``), or any other callable, called as ``f(image)`` or, when the item has a
    mask or points, ``f(image, *those)`` and returning them in the same order. The image it
    sees is a ``TensorImage`` float ``[1, C, H, W]`` in [0, 1].
    """

    def __init__(self, augment: Any, seed: int, splits: tuple[str, ...]) -> None:
        self.seed, self.splits = int(seed), tuple(splits)
        self.native = augment == "light" or isinstance(augment, (Transform, Pipeline))
        if augment == "light":
            self.function: Any = Pipeline(fastai_light(), split_idx=0)
        elif isinstance(augment, (Transform, Pipeline)):
            self.function = Pipeline(augment if isinstance(augment, Pipeline) else [augment], split_idx=0)
        else:
            self.function = augment

    def __call__(self, item: tuple[Any, ...]) -> tuple[Any, ...]:
        if not any(isinstance(part, TensorImage) for part in item):
            # fastai's pipeline setup calls ``do_item`` while the item transforms are only partly
            # set up (``PointScaler.setups`` runs before ``ToTensor`` exists): the image is
            # still a PIL image and there is nothing to augment yet.
            return item
        places = [i for i, part in enumerate(item) if isinstance(part, _GEOMETRIC)]
        parts = [_batch_of_one(item[i]) for i in places]
        if self.native:
            moved = self.function(tuple(parts))
        else:
            moved = self.function(*parts)
            moved = (moved,) if len(parts) == 1 and not isinstance(moved, tuple) else moved
        out = list(item)
        for place, part in zip(places, moved, strict=True):
            out[place] = _unbatch(part, item[place])
        return tuple(out)


def _batch_of_one(part: Any) -> Any:
    if isinstance(part, TensorImage):
        return part[None].float() / 255.0 if not part.is_floating_point() else part[None]
    return part[None]


def _unbatch(part: Any, original: Any) -> Any:
    part = part[0]
    if isinstance(original, TensorImage) and not original.is_floating_point():
        part = (part * 255.0).round_().clamp_(0, 255)
    return part.to(original.dtype)


class KeyedAugmentDL(TfmdDL):
    """A fastai ``TfmdDL`` that augments each row of an augmented split under its own seed.

    Its dataset's ``items`` are manifest rows (``image_id``, ``frame``, ``split``); rows of
    other item types (a ``test_dl`` over file names) are served unaugmented.
    """

    def __init__(self, dataset: Any = None, augmenter: ItemAugmenter | None = None, epoch: int = 0, **kwargs: Any):
        self.augmenter, self.epoch = augmenter, int(epoch)
        self._keys = _row_keys(dataset, augmenter)
        super().__init__(dataset, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Set before each epoch: every augmentation draw follows ``(seed, epoch, image)``."""
        self.epoch = int(epoch)

    def do_item(self, s: Any) -> Any:
        key = self._keys[s or 0] if self._keys is not None else None
        if key is None or self.augmenter is None:
            return super().do_item(s)
        with seeded(draw_seed(self.augmenter.seed, self.epoch, key)):
            item = super().do_item(s)
            return None if item is None else self.augmenter(item)

    def new(self, dataset: Any = None, cls: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("augmenter", self.augmenter)
        kwargs.setdefault("epoch", self.epoch)
        return super().new(dataset, cls, **kwargs)


def _row_keys(dataset: Any, augmenter: ItemAugmenter | None) -> list[str | None] | None:
    """Per dataset index: the augmentation key of the row, or None when that row is not augmented."""
    items = getattr(dataset, "items", None)
    if augmenter is None or not hasattr(items, "columns") or not {"image_id", "split"} <= set(items.columns):
        return None
    frames = items["frame"] if "frame" in items.columns else [0] * len(items)
    return [
        item_key(str(image_id), int(frame)) if split in augmenter.splits else None
        for image_id, frame, split in zip(items["image_id"], frames, items["split"], strict=True)
    ]


def set_epoch(dls: Any, epoch: int) -> None:
    """``set_epoch`` on every DataLoader of ``dls`` that has one (through fastai's ``DistributedDL``)."""
    for loader in getattr(dls, "loaders", [dls]):
        loader = getattr(loader, "dl", loader)  # DistributedDL wraps the real one
        if isinstance(loader, KeyedAugmentDL):
            loader.set_epoch(epoch)


class EpochSetter:
    """``dls.set_epoch(n)``: :func:`set_epoch` bound to one ``DataLoaders`` (a picklable callable)."""

    def __init__(self, dls: Any) -> None:
        self.dls = dls

    def __call__(self, epoch: int) -> None:
        set_epoch(self.dls, epoch)


class SetEpoch(Callback):
    """fastai callback: before each epoch, ``set_epoch(learn.epoch)`` on the learner's DataLoaders."""

    order = -10  # before the training loop draws anything

    def before_epoch(self) -> None:
        set_epoch(self.learn.dls, self.learn.epoch)
