"""torch items of the annotation tasks: masks and boxes as torchvision ``tv_tensors``.

What each task serves, and how its items are selected, is framework-neutral:
:mod:`covid19_images.loaders.tasks`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from covid19_images.loaders._frameworks import require
from covid19_images.loaders.tasks import TaskTargets


def torch_item(
    targets: TaskTargets, index: int, image: Any, transform: Any, target_transform: Any, augment: Any = None
) -> tuple:
    """One torch item of a non-classification task; joint transforms move masks and boxes with the image.

    ``transform`` and ``augment`` (the per-item seeded augmenter, or None) are called as
    ``f(image, target)`` for segmentation and detection (torchvision ``transforms.v2``
    applies the same geometric transform to the ``tv_tensors.Image``, the
    ``tv_tensors.Mask`` and the ``tv_tensors.BoundingBoxes``), and as ``f(image)`` for
    severity and multi-label targets.
    """
    import torch

    height, width = int(image.shape[-2]), int(image.shape[-1])
    if targets.task in ("segmentation", "detection"):
        tv_tensors = require("torchvision.tv_tensors", "torch")  # guards the TensorFlow-then-torchvision order

        image = tv_tensors.Image(image)
        if targets.task == "segmentation":
            target: Any = tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(targets.mask(index, height, width))))
        else:
            boxes, labels = targets.boxes(index, height, width)
            target = {
                "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY", canvas_size=(height, width)),
                "labels": torch.from_numpy(labels),
            }
        for step in (augment, transform):
            if step is not None:
                image, target = step(image, target)
    else:
        target = targets.value(index) if targets.task == "severity" else torch.from_numpy(targets.multihot(index))
        for step in (augment, transform):
            if step is not None:
                image = step(image)
    if target_transform is not None:
        target = target_transform(target)
    return image, target
