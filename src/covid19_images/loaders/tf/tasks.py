"""TensorFlow for the annotation tasks (see :mod:`covid19_images.loaders.tasks`).

``tf.data`` over the same items and targets as torch: ``(image [H, W, C] float32 in
[0, 1], target)`` with target

* segmentation: a mask ``[H, W, 1]`` uint8 (Keras segmentation layout);
* severity: a float32 score; multi-label: a multi-hot float32 vector;
* detection: ``{"boxes": float32 [N, 4], "labels": int32 [N]}``, Keras 3's object
  detection layout (``keras.utils.bounding_boxes``, ``keras.visualization.draw_bounding_boxes``)
  with ``bounding_box_format="xyxy"``: absolute pixels ``(x0, y0, x1, y1)`` of the served
  image (``dataset.bounding_box_format``). N differs per image: with ``batch_size`` the
  batch is a ``padded_batch`` with ``-1`` in padded rows (KerasCV's ``to_dense`` sentinel;
  keep rows whose label is >= 0). KerasCV names the labels ``"classes"``: rename with
  ``.map(lambda x, y: (x, {"boxes": y["boxes"], "classes": y["labels"]}))``.
  ``tf.image.draw_bounding_boxes`` wants ``[ymin, xmin, ymax, xmax]`` divided by the size.

Decoding goes through the shared ``load_item`` (via ``tf.numpy_function``), so pixels and
targets are identical to torch's. ``augment="light"`` warps image, mask and boxes with one
stateless draw per item (:func:`covid19_images.loaders.augment.tf_light`); a callable is
called ``f(image, seed)`` for severity/multi-label and ``f(image, target, seed) ->
(image, target)`` for segmentation and detection. ``with_id`` appends the image id.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from covid19_images.loaders._frameworks import import_tensorflow
from covid19_images.loaders._manifest import selection_for
from covid19_images.loaders._options import Options
from covid19_images.loaders._pixels import load_item
from covid19_images.loaders.augment import item_key
from covid19_images.loaders.tasks import TaskTargets
from covid19_images.loaders.tf.augment import tf_light, tf_seed

BOUNDING_BOX_FORMAT = "xyxy"


def _augmenter(tf: Any, options: Options, task: str) -> Any:
    """``f(image, target, seed) -> (image, target)`` for ``options.augment`` (None when not augmenting)."""
    augment = options.augment
    if augment is None:
        return None
    if augment != "light":
        if task in ("segmentation", "detection"):
            return augment
        return lambda image, target, seed: (augment(image, seed), target)
    if task == "segmentation":
        return lambda image, mask, seed: tf_light(tf, image, seed, mask=mask)

    if task == "detection":

        def light_boxes(image: Any, target: dict, seed: Any) -> tuple[Any, dict]:
            image, boxes, kept = tf_light(tf, image, seed, boxes=target["boxes"])
            return image, {"boxes": boxes, "labels": tf.gather(target["labels"], kept)}

        return light_boxes
    return lambda image, target, seed: (tf_light(tf, image, seed), target)


def make_tf_task_dataset(
    options: Options,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    prefetch: bool = True,
) -> Any:
    tf = import_tensorflow()
    selection = selection_for(options)
    items = selection.items
    targets = TaskTargets(items, options)
    files, formats = items["file"].tolist(), items["format"].tolist()
    frames = items["frame"].to_numpy(dtype=np.int64)
    size, channels = options.image_size, options.channels

    stamp = selection.stamp

    def load(index: np.int64) -> tuple[np.ndarray, ...]:
        i = int(index)
        pixels = load_item(files[i], int(frames[i]), formats[i], size, channels)
        image = pixels.astype(np.float32) * np.float32(1.0 / 255.0)
        if targets.task == "detection":
            boxes, labels = targets.boxes(i, pixels.shape[0], pixels.shape[1])
            element: tuple[np.ndarray, ...] = (image, boxes, labels.astype(np.int32))
        else:
            if targets.task == "segmentation":
                target = targets.mask(i, pixels.shape[0], pixels.shape[1])[:, :, None]
            elif targets.task == "severity":
                target = np.float32(targets.value(i))
            else:
                target = targets.multihot(i)
            element = (image, np.asarray(target))
        if stamp is not None:
            # after the reads (pixels, masks), inside the same call: a sync landing between a check and
            # the read cannot pair the new file with the old targets. Not a check when served, as the
            # adapter's (served_while_unchanged): an error there while this parallel map's Python calls
            # are in flight hung the interpreter's exit (measured); an element read before a sync holds
            # the old files, which match the targets it carries.
            stamp.check()
        return element

    if targets.task == "detection":
        out_types, target_shape = (tf.float32, tf.float32, tf.int32), [None, 4]
    elif targets.task == "segmentation":
        out_types, target_shape = (tf.float32, tf.uint8), [*(size or (None, None)), 1]
    elif targets.task == "severity":
        out_types, target_shape = (tf.float32, tf.float32), []
    else:
        out_types, target_shape = (tf.float32, tf.float32), [len(targets.classes)]

    ids = items["image_id"].astype(str).tolist()
    keys = [item_key(i, f) for i, f in zip(ids, frames, strict=True)]
    augmented = np.isin(items["split"].astype(str), list(options.augment_splits))
    augment = _augmenter(tf, options, targets.task)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)

    def decode(index: Any, image_id: Any, key: Any, augment_this: Any) -> tuple[Any, ...]:
        decoded = tf.numpy_function(load, [index], out_types, stateful=False)
        image = decoded[0]
        image.set_shape([*(size or (None, None)), channels])
        decoded[1].set_shape(target_shape)
        if targets.task == "detection":
            decoded[2].set_shape([None])
        target = {"boxes": decoded[1], "labels": decoded[2]} if targets.task == "detection" else decoded[1]
        if augment is not None:
            item_seed = tf_seed(tf, options.seed, epoch, key)
            image, target = tf.cond(augment_this, lambda: augment(image, target, item_seed), lambda: (image, target))
        return (image, target, image_id) if options.with_id else (image, target)

    dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(items), dtype=np.int64), ids, keys, augmented))
    if shuffle:
        dataset = dataset.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if batch_size and targets.task == "detection":
        padding = (0.0, {"boxes": -1.0, "labels": -1}, *([""] if options.with_id else []))
        dataset = dataset.padded_batch(batch_size, padding_values=padding)
    elif batch_size:
        dataset = dataset.batch(batch_size)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.set_epoch = lambda value: epoch.assign(int(value))
    dataset.classes = list(selection.classes)
    dataset.target_classes = list(targets.classes)
    dataset.manifest = items.drop(columns=["file", "label_index"])
    if targets.task == "detection":
        dataset.bounding_box_format = BOUNDING_BOX_FORMAT
    return dataset
