"""TensorFlow dataset of CT volumes (see :mod:`covid19_images.loaders.volumes`).

Each element is ``(volume, label)``: float32 ``[z, y, x, 1]`` in Hounsfield units,
channels last as Keras ``Conv3D`` expects, and an int32 label (a float32 multi-hot vector over
``dataset.target_classes`` with ``target="multilabel"``); ``(volume, label, key)``
with ``with_id`` (the key: series UID, or the NIfTI path). With ``monai_dict=True`` a dict
with the MONAI-style keys ``"image"`` (``[z, y, x, 1]``), ``"label"`` and ``"mask"``
(uint8 ``[z, y, x, 1]``; present when every served volume has a mask volume) plus the
meta as tensors: ``"spacing"`` and ``"original_spacing"`` (float32 ``(z, y, x)`` mm),
``"key"`` and ``"source"``. The voxels come from the shared NumPy
:class:`~covid19_images.loaders.volumes.VolumeReader`, so they equal torch's.

Volumes differ in shape unless ``volume_size=`` fixes it: batch (``batch_size``) only then.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from covid19_images.loaders._frameworks import import_tensorflow
from covid19_images.loaders._options import Options
from covid19_images.loaders.volumes import VolumeReader


def make_tf_volume_dataset(
    options: Options,
    batch_size: int | None = None,
    shuffle: bool = False,
    prefetch: bool = True,
) -> Any:
    """A ``tf.data.Dataset`` of CT volumes.

    Args:
        options: the validated shared options (``volumes=True``).
        batch_size: batch before the final prefetch (needs ``volume_size``); None serves single volumes.
        shuffle: shuffle the volume order each epoch (seeded by ``options.seed``).
        prefetch: end the pipeline with ``prefetch(AUTOTUNE)``.
    """
    if batch_size and options.volume_size is None:
        raise ValueError("batching volumes needs volume_size=(z, y, x): volumes differ in shape otherwise")
    tf = import_tensorflow()
    reader = VolumeReader(options)
    with_mask = options.monai_dict and all(v.mask for v in reader.volumes)
    labels = np.array([v.label_index for v in reader.volumes], dtype=np.int32)
    if options.target == "multilabel":
        labels = np.stack([reader.multihot(i) for i in range(len(reader.volumes))])

    def load(index: np.int64) -> tuple[np.ndarray, ...]:
        volume, mask, meta = reader.arrays(int(index))
        arrays = [volume[..., None], np.float32(meta["spacing"]), np.float32(meta["original_spacing"])]
        if with_mask:
            arrays.append(np.asarray(mask, dtype=np.uint8)[..., None])
        return tuple(arrays)

    types = [tf.float32, tf.float32, tf.float32] + ([tf.uint8] if with_mask else [])
    shape = [*(options.volume_size or (None, None, None)), 1]

    def decode(index: Any, label: Any, key: Any, source: Any) -> Any:
        out = tf.numpy_function(load, [index], types, stateful=False)
        volume, spacing, original = out[0], out[1], out[2]
        volume.set_shape(shape)
        spacing.set_shape([3])
        original.set_shape([3])
        if not options.monai_dict:
            return (volume, label, key) if options.with_id else (volume, label)
        item = {"image": volume, "label": label, "spacing": spacing, "original_spacing": original}
        item.update(key=key, source=source)
        if with_mask:
            out[3].set_shape(shape)
            item["mask"] = out[3]
        return item

    keys = [v.key for v in reader.volumes]
    sources = [v.source for v in reader.volumes]
    dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(keys), dtype=np.int64), labels, keys, sources))
    if shuffle:
        dataset = dataset.shuffle(len(keys), seed=options.seed, reshuffle_each_iteration=True)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if batch_size:
        dataset = dataset.batch(batch_size)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.classes = list(reader.classes)
    dataset.target_classes = list(reader.target_classes)
    dataset.volumes = reader.volumes
    dataset.duplicates = reader.duplicates
    return dataset
