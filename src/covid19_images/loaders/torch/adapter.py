"""PyTorch: a ``torch.utils.data.Dataset`` shaped like a torchvision dataset.

Per-item metadata is kept in plain lists and NumPy arrays (not the DataFrame) so
``__getitem__`` does no pandas work and the dataset pickles small and fast into
DataLoader worker processes. Only ``torch`` is imported, never torchvision, so this
adapter also works in a process that imported TensorFlow first (see ``loaders``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from covid19_images.core.medical import warn_medical
from covid19_images.loaders._frameworks import require
from covid19_images.loaders._manifest import selection_for
from covid19_images.loaders._options import Options
from covid19_images.loaders._pixels import load_item
from covid19_images.loaders._select import Selection
from covid19_images.loaders.augment import item_key
from covid19_images.loaders.cache import PixelCache, open_cache
from covid19_images.loaders.torch.augment import make_torch_augmenter

torch = require("torch", "torch")
_SCALE = np.float32(1.0 / 255.0)


class CovidImageDataset(torch.utils.data.Dataset):
    """``ds[i]`` is ``(image, label)``: a float32 tensor ``[C, H, W]`` in [0, 1] and an int
    (``(image, label, image_id)`` with ``with_id=True``).

    Like torchvision datasets it takes ``root``, ``transform`` (applied to the image
    tensor) and ``target_transform`` (applied to the label index), and exposes
    ``classes``, ``class_to_idx`` and ``targets``. ``manifest`` holds the served rows,
    one per item, in serving order (a volume contributes one row per slice, ``frame``).

    ``dtype="uint8"`` serves ``[C, H, W]`` uint8 tensors (0..255) instead: a quarter of the
    bytes to move from DataLoader workers to the training process, for pipelines that
    convert and normalise on the GPU (e.g. ``v2.ToDtype(torch.float32, scale=True)``).
    With ``cache=True`` that transfer, not decoding, is what limits throughput.
    """

    def __init__(
        self,
        root: Any = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        *,
        modality: str = "xray",
        options: Options | None = None,
        selection: Selection | None = None,
        dtype: str = "float32",
        **kwargs: Any,
    ) -> None:
        from covid19_images.loaders._options import make_options

        if options is None:
            options = make_options(modality, root=root, **kwargs)
            warn_medical()
        elif kwargs:
            raise TypeError("pass either options= or keyword options, not both")
        if dtype not in ("float32", "uint8"):
            raise ValueError(f"dtype must be 'float32' or 'uint8', not {dtype!r}")
        self.dtype = dtype
        self.options = options
        self.root = options.root
        self.transform = transform
        self.target_transform = target_transform
        selection = selection if selection is not None else selection_for(options)
        self.classes: list[str] = list(selection.classes)
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
        from covid19_images.loaders.tasks import TaskTargets, needs_task_selection  # issue 13

        self._task = TaskTargets(selection.items, options) if needs_task_selection(options) else None
        #: what the target indexes: mask classes, box classes, the multi-label vocabulary, or the labels
        self.target_classes: list[str] = list(self._task.classes if self._task else self.classes)
        items = selection.items
        self._files: list[str] = items["file"].tolist()
        self._frames = items["frame"].to_numpy(dtype=np.int64)
        self._formats: list[str] = items["format"].tolist()
        self._labels = items["label_index"].to_numpy(dtype=np.int64)
        self._manifest = items.drop(columns=["file", "label_index"])
        # issue 12: ids, augmentation, epoch (see loaders.augment)
        self._ids: list[str] = items["image_id"].astype(str).tolist()
        self._splits: list[str] = items["split"].astype(str).tolist()
        self._augmenter = make_torch_augmenter(options.augment, options.seed)
        self.epoch = 0
        self._cache: PixelCache | None = None
        self._stamp = selection.stamp
        if options.cache:
            assert options.image_size is not None
            self._cache = open_cache(selection, options.image_size, options.channels, options.cache_directory)

    @property
    def manifest(self) -> pd.DataFrame:
        return self._manifest

    @property
    def targets(self) -> list[int]:
        return self._labels.tolist()

    def __len__(self) -> int:
        return len(self._files)

    def pixels(self, index: int) -> np.ndarray:
        """The uint8 ``(H, W, C)`` pixels of item ``index``, before ``transform`` (a copy)."""
        pixels = np.array(self._pixels(index))
        self._check_unchanged(files_read=self._cache is None)
        return pixels

    def _pixels(self, index: int) -> np.ndarray:
        if self._cache is not None:
            return self._cache.array[index]  # read-only view of the memory map
        return load_item(
            self._files[index],
            int(self._frames[index]),
            self._formats[index],
            self.options.image_size,
            self.options.channels,
        )

    def _check_unchanged(self, files_read: bool) -> None:
        """Refuse an item whose files were read while, or after, a sync rewrote the manifest.

        Called once the item's files (pixels, masks) have been read, not before: a check before
        the read passes when a sync finishes between the check and the read, and the item would
        pair the new file's pixels with the old manifest's label. One ``stat``
        (:meth:`ManifestStamp.check`, raising ``ManifestChanged``).
        """
        if files_read and self._stamp is not None:
            self._stamp.check()

    def set_epoch(self, epoch: int) -> None:
        """Set before each epoch (as with ``DistributedSampler``): augmentation draws follow it."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        pixels = self._pixels(index)
        if self.dtype == "uint8":
            image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
        else:
            # one pass: HWC uint8 -> CHW float32 in [0, 1], into a fresh (writable) array
            chw = np.empty((pixels.shape[2], pixels.shape[0], pixels.shape[1]), dtype=np.float32)
            np.multiply(pixels.transpose(2, 0, 1), _SCALE, out=chw)
            image = torch.from_numpy(chw)
        if self._task is not None:  # issue 13: masks/boxes/scores, joint transforms
            from covid19_images.loaders.torch.tasks import torch_item

            augment = None
            if self._augmenter is not None and self._splits[index] in self.options.augment_splits:
                augment = partial(
                    self._augmenter, key=item_key(self._ids[index], int(self._frames[index])), epoch=self.epoch
                )
            item = torch_item(self._task, index, image, self.transform, self.target_transform, augment)
            self._check_unchanged(files_read=True)  # the task's masks are read from files, cache or not
            return (*item, self._ids[index]) if self.options.with_id else item
        self._check_unchanged(files_read=self._cache is None)
        label: Any = int(self._labels[index])
        if self._augmenter is not None and self._splits[index] in self.options.augment_splits:
            key = item_key(self._ids[index], int(self._frames[index]))
            image = self._augmenter(image, key=key, epoch=self.epoch)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        if self.options.with_id:
            return image, label, self._ids[index]
        return image, label

    def __repr__(self) -> str:
        o = self.options
        return (
            f"CovidImageDataset({o.modality}, split={o.split!r}, {len(self)} items, classes={self.classes}, "
            f"image_size={o.image_size}, channels={o.channels}, dtype={self.dtype}, cache={o.cache})"
        )


def make_torch_dataset(
    options: Options,
    transform: Callable[[Any], Any] | None = None,
    target_transform: Callable[[int], Any] | None = None,
    dtype: str = "float32",
) -> CovidImageDataset:
    """A map-style ``torch.utils.data.Dataset`` of ``(image, label)``.

    Args:
        options: the validated shared options.
        transform: applied to each image tensor (torchvision convention).
        target_transform: applied to each label index.
        dtype: "float32" ([0, 1] floats) or "uint8" (a quarter of the bytes between workers).
    """
    return CovidImageDataset(transform=transform, target_transform=target_transform, options=options, dtype=dtype)
