"""fastai ``DataLoaders`` of CT volumes (see :mod:`covid19_images.loaders.volumes`).

fastai has no 3-D block, so no ``DataBlock`` here: ``DataLoaders.from_dsets`` over the
torch volume datasets of the manifest's ``train`` and ``val`` rows (the same
:class:`~covid19_images.loaders.volumes.VolumeReader`, so the same voxels), batches of
``(volume float32 [bs, 1, z, y, x] in HU, label [bs])`` for a ``Learner`` with a 3-D
model. Batching needs one shape: ``volume_size=`` is required. ``monai_dict`` is refused
(fastai collates tuples; MONAI users take the torch datasets). The test volumes are
``dls.test_ds``, a torch dataset of the ``test`` rows (None when there are none).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from covid19_images.loaders._frameworks import guard_tf_then_torchvision, require
from covid19_images.loaders._options import Options
from covid19_images.loaders._select import NoItemsError


def make_fastai_volume_dataloaders(
    options: Options,
    *,
    bs: int = 2,
    num_workers: int | None = None,
    shuffle: bool = True,
    device: Any = None,
) -> Any:
    """fastai ``DataLoaders`` with train and valid volumes from the manifest's split column.

    Args:
        options: the validated shared options (``volumes=True`` and ``volume_size``; ``split`` left out).
        bs: volumes per batch.
        num_workers: DataLoader workers; default fastai's.
        shuffle: shuffle the training volumes each epoch.
        device: where batches go; default fastai's (the GPU when there is one).
    """
    if options.split != "train":  # the default; None, "val" or "test" is a mistake
        raise ValueError(
            f"fastai DataLoaders hold both train and valid volumes; leave split= out (got split={options.split!r})"
        )
    if options.volume_size is None:
        raise ValueError("fastai batches volumes: give volume_size=(z, y, x) so they share one shape")
    if options.monai_dict or options.with_id:
        raise ValueError(
            "monai_dict and with_id are for the torch and tf volume datasets; fastai serves (volume, label) tuples "
            "(the volumes of dls.train_ds.volumes / dls.valid_ds.volumes name each one, in order)"
        )
    guard_tf_then_torchvision("fastai")
    require("fastai", "fastai")
    from fastai.data.core import DataLoaders

    from covid19_images.loaders.torch.volumes import CovidVolumeDataset
    from covid19_images.loaders.volumes import VolumeReader

    # one selection for all three splits: one class order, the manifest read and the files checked once
    whole = VolumeReader(replace(options, split=None))
    train, valid = (CovidVolumeDataset(options, reader=whole.split_off(split)) for split in ("train", "val"))
    kwargs: dict[str, Any] = {"bs": bs, "shuffle": (shuffle, False), "drop_last": (False, False)}
    if num_workers is not None:
        kwargs["num_workers"] = num_workers
    if device is not None:
        kwargs["device"] = device
    dls = DataLoaders.from_dsets(train, valid, **kwargs)
    dls.classes = whole.classes
    dls.target_classes = whole.target_classes  # target="multilabel": the multi-hot order
    try:
        dls.test_ds = CovidVolumeDataset(options, reader=whole.split_off("test"))
    except NoItemsError:
        dls.test_ds = None
    return dls
