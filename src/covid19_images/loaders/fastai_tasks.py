"""fastai blocks for the annotation tasks (see :mod:`covid19_images.loaders.tasks`).

The task's target becomes the second block of the adapter's ``DataBlock``: ``MaskBlock``
for segmentation (fastai's ``item_tfms``/``batch_tfms`` then move the ``TensorMask`` with
the image, as fastai does for its own segmentation data), ``RegressionBlock`` for severity
and ``MultiCategoryBlock(encoded=True)`` for multi-label. Detection is not served in fastai
yet (use torch).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from covid19_images.loaders._options import Options
from covid19_images.loaders.tasks import TaskTargets


class RowTarget:
    """``get_y``: one served row -> its task target. Picklable for DataLoader workers."""

    def __init__(self, targets: TaskTargets, size: tuple[int, int] | None) -> None:
        self.targets, self.size = targets, size

    def __call__(self, row: pd.Series) -> Any:
        index = int(row["item"])
        if self.targets.task == "segmentation":
            from fastai.vision.core import PILMask

            height, width = self.size or (int(row["height"]), int(row["width"]))
            return PILMask.create(self.targets.mask(index, height, width))
        if self.targets.task == "severity":
            return self.targets.value(index)
        return self.targets.multihot(index)


def task_block(options: Options, items: pd.DataFrame) -> tuple[Any, RowTarget]:
    """(fastai block, get_y) for ``options.task`` / ``options.target`` over the selection's items."""
    if options.task == "detection":
        raise NotImplementedError("task='detection' is served by the 'torch' loader only; use framework='torch'")
    from fastai.data.block import MultiCategoryBlock, RegressionBlock
    from fastai.vision.data import MaskBlock

    targets = TaskTargets(items, options)
    if options.task == "segmentation":
        block = MaskBlock(codes=list(targets.classes))
    elif options.task == "severity":
        block = RegressionBlock()
    else:
        block = MultiCategoryBlock(encoded=True, vocab=list(targets.classes))
    return block, RowTarget(targets, options.image_size)
