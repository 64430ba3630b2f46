"""TensorFlow for the annotation tasks (see :mod:`covid19_images.loaders.tasks`).

``tf.data`` over the same items and targets as torch: ``(image [H, W, C] float32 in
[0, 1], target)`` with target a mask ``[H, W, 1]`` uint8 (Keras segmentation layout),
a float32 severity score or a multi-hot float32 vector. Decoding goes through the shared
``load_item`` (via ``tf.numpy_function``), so pixels are identical to torch's. Detection is
not served in TF yet (boxes per image are ragged; use torch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from covid19_images.loaders import selection_for
from covid19_images.loaders._options import Options
from covid19_images.loaders._pixels import load_item
from covid19_images.loaders.tasks import TaskTargets
from covid19_images.loaders.tf_adapter import import_tensorflow


def make_tf_task_dataset(
    options: Options,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    prefetch: bool = True,
) -> Any:
    if options.task == "detection":
        raise NotImplementedError("task='detection' is served by the 'torch' loader only; use framework='torch'")
    tf = import_tensorflow()
    selection = selection_for(options)
    items = selection.items
    targets = TaskTargets(items, options)
    files, formats = items["file"].tolist(), items["format"].tolist()
    frames = items["frame"].to_numpy(dtype=np.int64)
    size, channels = options.image_size, options.channels

    def load(index: np.int64) -> tuple[np.ndarray, np.ndarray]:
        i = int(index)
        pixels = load_item(files[i], int(frames[i]), formats[i], size, channels)
        image = pixels.astype(np.float32) * np.float32(1.0 / 255.0)
        if targets.task == "segmentation":
            target = targets.mask(i, pixels.shape[0], pixels.shape[1])[:, :, None]
        elif targets.task == "severity":
            target = np.float32(targets.value(i))
        else:
            target = targets.multihot(i)
        return image, np.asarray(target)

    if targets.task == "segmentation":
        out_types, target_shape = (tf.float32, tf.uint8), [*(size or (None, None)), 1]
    elif targets.task == "severity":
        out_types, target_shape = (tf.float32, tf.float32), []
    else:
        out_types, target_shape = (tf.float32, tf.float32), [len(targets.classes)]

    def decode(index: Any) -> tuple[Any, Any]:
        image, target = tf.numpy_function(load, [index], out_types, stateful=False)
        image.set_shape([*(size or (None, None)), channels])
        target.set_shape(target_shape)
        return image, target

    dataset = tf.data.Dataset.range(len(items))
    if shuffle:
        dataset = dataset.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if batch_size:
        dataset = dataset.batch(batch_size)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.classes = list(selection.classes)
    dataset.target_classes = list(targets.classes)
    dataset.manifest = items.drop(columns=["file", "label_index"])
    return dataset
