"""fastai blocks for the annotation tasks (see :mod:`covid19_images.loaders.tasks`).

The task's target becomes the second block of the adapter's ``DataBlock``: ``MaskBlock``
for segmentation (fastai's ``item_tfms``/``batch_tfms`` then move the ``TensorMask`` with
the image, as fastai does for its own segmentation data), ``RegressionBlock`` for severity
and ``MultiCategoryBlock(encoded=True)`` for multi-label. Detection follows fastai's own
detection examples: ``(ImageBlock, BBoxBlock, BBoxLblBlock)`` with ``n_inp=1``; boxes are
pixels of the served image when read (``get_y``), fastai's ``PointScaler`` scales them to
-1..1 (``TensorBBox``), its affine transforms (``aug_transforms``, ``augment="light"``,
``FlipItem``) move them with the image, and ``bb_pad`` pads each batch (label 0, ``#na#``,
in padded rows; ``BBoxLblBlock`` vocab ``["#na#", *BOX_CLASSES[1:]]``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from covid19_images.loaders._options import Options
from covid19_images.loaders.tasks import BOX_CLASSES, TaskTargets


class RowTarget:
    """``get_y``: one served row -> its task target. Picklable for DataLoader workers."""

    def __init__(self, targets: TaskTargets, size: tuple[int, int] | None, part: str = "") -> None:
        self.targets, self.size, self.part = targets, size, part

    def __call__(self, row: pd.Series) -> Any:
        index = int(row["item"])
        height, width = self.size or (int(row["height"]), int(row["width"]))
        if self.targets.task == "detection":
            boxes, labels = self.targets.boxes(index, height, width)
            if self.part == "boxes":
                return boxes.tolist()
            return [BOX_CLASSES[i] for i in labels]
        if self.targets.task == "segmentation":
            from fastai.vision.core import PILMask

            return PILMask.create(self.targets.mask(index, height, width))
        if self.targets.task == "severity":
            return self.targets.value(index)
        return self.targets.multihot(index)


def task_block(options: Options, items: pd.DataFrame) -> tuple[tuple[Any, ...], list[RowTarget]]:
    """(fastai target blocks, their get_y) for ``options.task`` / ``options.target`` over the selection's items."""
    from fastai.data.block import MultiCategoryBlock, RegressionBlock
    from fastai.vision.data import BBoxBlock, BBoxLblBlock, MaskBlock

    targets = TaskTargets(items, options)
    size = options.image_size
    if options.task == "detection":
        # fastai adds "#na#" (index 0, bb_pad's padding) itself: the vocab is the real classes
        blocks = (BBoxBlock, BBoxLblBlock(vocab=list(BOX_CLASSES[1:])))
        return blocks, [RowTarget(targets, size, "boxes"), RowTarget(targets, size, "labels")]
    if options.task == "segmentation":
        block = MaskBlock(codes=list(targets.classes))
    elif options.task == "severity":
        block = RegressionBlock()
    else:
        block = MultiCategoryBlock(encoded=True, vocab=list(targets.classes))
    return (block,), [RowTarget(targets, size)]
