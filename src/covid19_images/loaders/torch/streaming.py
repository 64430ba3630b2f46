"""Streaming over WebDataset shards for multi-GPU / multi-node training (torch).

``load_covid_xray("torch", shards=DIR_or_URLs, split="train")`` returns a
:class:`ShardStream`, a ``torch.utils.data.IterableDataset`` that reads tar shards with
WebDataset's tar engine (``webdataset.tarfile_samples``: local files, ``http(s)://``,
``pipe:`` and object-store URLs all work). ``DIR`` is a ``covid19-images export
--format webdataset`` folder (its ``export.json`` lists the split's shards, their sample
counts and the classes); anything else is a shard URL pattern such as
``s3://bucket/train-{000000..000041}.tar`` (brace-expanded, taken as given).

Who reads what, per epoch:

1. the shard list is shuffled with ``Random(seed, epoch)`` (when shuffling), identically on
   every rank;
2. shard ``i`` goes to rank ``i % world_size`` (``torch.distributed``, if initialised);
3. a rank's ``j``-th shard goes to its DataLoader worker ``j % num_workers``;
4. each worker reads its shards in order through a shuffle buffer seeded with
   ``(seed, epoch, rank, worker)``.

So over one epoch every sample is read exactly once across all ranks and workers.

Uneven shards and DDP: ranks must run the same number of steps or the last all-reduce
hangs. With ``equalize=None`` (default) nothing is dropped or repeated, and ranks may get
different counts (keep ``shards >= world_size * workers`` and equal-sized shards, or use
``torch.distributed.algorithms.join.Join``). ``equalize="drop"`` / ``"pad"`` uses the
per-shard counts of ``export.json`` to give *every worker index on every rank* the same
number of samples (the minimum / maximum over ranks; padding repeats the worker's own
samples, as ``DistributedSampler`` pads), hence the same number of batches on every rank.

``set_epoch(epoch)`` before each epoch changes the shard order, the buffer and the
augmentation draws (DataLoader workers are re-created per epoch unless
``persistent_workers=True``, which would freeze the epoch: leave it off).
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from covid19_images.imaging.png import fast_png_bytes, png_kind
from covid19_images.loaders._frameworks import require
from covid19_images.loaders._options import Options
from covid19_images.loaders.augment import item_key
from covid19_images.loaders.shards import (
    budgets,
    equalized,
    mix,
    plan,
    rank_and_world_of,
    rank_samples,
    resolve_shards,
)
from covid19_images.loaders.torch.augment import make_torch_augmenter

torch = require("torch", "torch")
DEFAULT_BUFFER = 1000


def rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def worker_and_count() -> tuple[int, int]:
    info = torch.utils.data.get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def decode_image(data: bytes, size: tuple[int, int] | None, channels: int) -> np.ndarray:
    """Encoded bytes -> uint8 (H, W, C), converted and resized the way the map-style loaders do.

    An export's images are grey or RGB PNGs already at the training size: those decode with
    libspng (the pixels Pillow gives, without Pillow's per-image set-up, and grey replicated
    without a conversion pass); anything else (a resize, a grey view of colour, JPEG) is
    Pillow's, as before."""
    pixels = _export_png(data, size, channels)
    if pixels is not None:
        return pixels
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        if size is not None and (image.height, image.width) != tuple(size):
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=3.0)
        pixels = np.asarray(image)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _export_png(data: bytes, size: tuple[int, int] | None, channels: int) -> np.ndarray | None:
    """A grey or RGB PNG that needs no resize, through libspng; None for Pillow's path."""
    kind = png_kind(data[:33])
    if kind not in (0, 2) or (kind == 2 and channels == 1):  # RGB -> L is Pillow's luma: keep it there
        return None
    pixels = fast_png_bytes(data)
    if pixels is None or (size is not None and pixels.shape[:2] != tuple(size)):
        return None
    if pixels.ndim == 2:
        # L -> RGB copies the grey value: a read-only view, so the conversion below reads each grey row once per channel
        pixels = np.broadcast_to(pixels[:, :, None], (*pixels.shape, channels))
    return pixels


class ShardStream(torch.utils.data.IterableDataset):
    """Items ``(image, label)`` or ``(image, label, image_id)`` streamed from WebDataset shards.

    ``image`` is a ``[C, H, W]`` float32 tensor in [0, 1] (or uint8 with ``dtype="uint8"``),
    exactly as the map-style dataset gives it; ``classes`` comes from the export.
    ``len()`` (when the shard counts are known) is this rank's number of samples per epoch.
    """

    def __init__(
        self, options: Options, *, transform: Any = None, target_transform: Any = None, dtype: str = "float32"
    ):
        super().__init__()
        if dtype not in ("float32", "uint8"):
            raise ValueError(f"dtype must be 'float32' or 'uint8', not {dtype!r}")
        assert options.shards is not None
        self.options = options
        self.urls, self.counts, classes = resolve_shards(options.shards, options.split, "webdataset")
        if options.equalize is not None and self.counts is None:
            raise ValueError("equalize needs the per-shard counts of an export folder (export.json): pass shards=DIR")
        self.classes: list[str] = list(classes) if classes is not None else []
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.transform, self.target_transform, self.dtype = transform, target_transform, dtype
        buffer = options.shuffle_buffer
        self.buffer = (DEFAULT_BUFFER if options.split == "train" else 0) if buffer is None else buffer
        self.augmenter = make_torch_augmenter(options.augment, options.seed)
        self.epoch = 0
        #: the DataLoader's num_workers, for ``len()`` in the main process (inside workers the real
        #: count is used); only matters with ``equalize``, whose budgets are per worker index
        self.num_workers = 1

    def set_epoch(self, epoch: int) -> None:
        """Set before iterating each epoch: shard order, shuffle buffer and augmentation follow it."""
        self.epoch = int(epoch)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a DataLoader worker (``spawn``/``forkserver`` start methods, the default of
        ``torch.multiprocessing.spawn`` launches and of Python 3.14): the worker is a fresh
        interpreter without the rank's process group, so the rank and world size travel with it."""
        state = dict(self.__dict__)
        state["_distributed"] = rank_and_world()
        return state

    def _rank_and_world(self) -> tuple[int, int]:
        """The process group's rank and size; in a spawned worker, those of the rank that started it."""
        live = torch.distributed.is_available() and torch.distributed.is_initialized()
        return rank_and_world_of(rank_and_world() if live else None, getattr(self, "_distributed", None))

    def _layout(self, workers: int) -> list[list[list[int]]]:
        _, world = self._rank_and_world()
        return plan(len(self.urls), self.options.seed, self.epoch, self.buffer > 0, world, workers)

    def __len__(self) -> int:
        if self.counts is None:
            raise TypeError("the number of samples is unknown for a shard URL pattern (no export.json)")
        rank, _ = self._rank_and_world()
        info = torch.utils.data.get_worker_info()
        layout = self._layout(info.num_workers if info is not None else max(1, self.num_workers))
        return rank_samples(layout, self.counts, self.options.equalize, rank)

    def _samples(self, shard_positions: list[int]) -> Iterator[dict[str, Any]]:
        from webdataset import tarfile_samples

        yield from tarfile_samples(iter([{"url": self.urls[i]} for i in shard_positions]))

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        from webdataset.filters import _shuffle

        rank, _ = self._rank_and_world()
        worker, workers = worker_and_count()
        layout = self._layout(workers)
        mine = layout[rank][worker]
        limits = budgets(layout, self.counts or [], self.options.equalize) if self.counts is not None else None
        epoch = self.epoch

        def read() -> Iterator[dict[str, Any]]:
            stream: Iterator[dict[str, Any]] = self._samples(mine)
            if self.buffer > 0:
                rng = random.Random(mix(self.options.seed, epoch, rank, worker))
                stream = _shuffle(stream, bufsize=self.buffer, initial=min(100, self.buffer), rng=rng)
            return stream

        budget = limits[worker] if limits is not None else None
        yield from (self._item(s) for s in equalized(read, budget, f"worker {worker} of rank {rank}"))

    def _item(self, sample: dict[str, Any]) -> tuple[Any, ...]:
        record = json.loads(sample["json"])
        data = next(sample[k] for k in ("png", "jpg", "jpeg") if k in sample)
        pixels = decode_image(data, self.options.image_size, self.options.channels)
        if self.dtype == "uint8":
            image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
        else:  # the map-style dataset's conversion, so both give the same floats
            chw = np.empty((pixels.shape[2], pixels.shape[0], pixels.shape[1]), dtype=np.float32)
            np.multiply(pixels.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=chw)
            image = torch.from_numpy(chw)
        if self.augmenter is not None and record.get("split") in self.options.augment_splits:
            image = self.augmenter(image, key=item_key(record["image_id"], record.get("frame", 0)), epoch=self.epoch)
        label: Any = int(sample["cls"])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        if self.options.with_id:
            return image, label, record["image_id"]
        return image, label

    def __repr__(self) -> str:
        o = self.options
        return f"ShardStream({len(self.urls)} shards, split={o.split!r}, classes={self.classes}, seed={o.seed})"


def make_torch_stream(
    options: Options, *, transform: Any = None, target_transform: Any = None, dtype: str = "float32"
) -> ShardStream:
    """The torch streaming loader (a WebDataset ``IterableDataset``) over ``options.shards``.

    Args:
        options: the validated shared options (``shards`` set).
        transform: applied to each image tensor.
        target_transform: applied to each label index.
        dtype: "float32" or "uint8".
    """
    return ShardStream(options, transform=transform, target_transform=target_transform, dtype=dtype)
