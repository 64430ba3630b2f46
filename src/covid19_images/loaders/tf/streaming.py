"""Streaming a TFRecord export as a ``tf.data.Dataset`` that works under ``tf.distribute``.

``load_covid_xray("tf", shards=DIR)`` reads ``DIR/<split>-*.tfrecord`` (listed in
``DIR/export.json``; a glob/URL pattern is taken as given). The dataset starts from the
*file* list and sets ``auto_shard_policy = FILE``, so under ``MultiWorkerMirroredStrategy``
(``strategy.experimental_distribute_dataset``) each worker reads whole files: of N workers,
worker i reads files i, i+N, ... of the sorted list, every record exactly once across the
workers (tests/loaders/tf/test_streaming.py runs two real workers). Keep at least as many
files as workers (``export --shard-size``): with fewer, TF stops at the first step with
"Could not apply FILE based sharding". Files are
interleaved deterministically; with ``shuffle=True`` the file order and a record buffer are
shuffled with ``seed`` (reshuffled each iteration); TF takes the FILE shard *before* that
shuffle, so which files a worker reads does not depend on the seed, only their order does.

Uneven shard counts (a short last file, or a file count not divisible by the workers) give
the workers different numbers of records. ``experimental_distribute_dataset`` handles it:
every worker runs the same number of steps, the workers that run out first get empty
(zero-size) per-replica batches until all are exhausted, so collectives never hang and no
record is dropped or repeated; losses averaged with ``tf.nn.compute_average_loss(...,
global_batch_size=...)`` stay right. ``drop_remainder=True`` on the batch would instead drop
each worker's own remainder. Elements are ``(image float32 [H, W, C] in
[0, 1], label int32)`` plus the ``image_id`` string with ``with_id=True``; ``augment``
applies :func:`covid19_images.loaders.augment.tf_light` (or the callable) to items of
``augment_splits`` with stateless seeds from ``(seed, epoch, image id)``; ``set_epoch``
on the returned dataset changes the epoch.
"""

from __future__ import annotations

from typing import Any

from covid19_images.loaders._frameworks import import_tensorflow
from covid19_images.loaders._options import Options
from covid19_images.loaders.shards import tfrecord_files
from covid19_images.loaders.tf.augment import tf_light, tf_seed

FEATURES = ("image/encoded", "image/class/label", "image/id", "image/frame", "meta/split")


def make_tf_stream(
    options: Options,
    batch_size: int | None = None,
    shuffle: bool = False,
    prefetch: bool = True,
) -> Any:
    tf = import_tensorflow()
    assert options.shards is not None
    files, classes = tfrecord_files(options.shards, options.split, tf.io.gfile.glob)
    size, channels = options.image_size, options.channels
    spec = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
        "image/id": tf.io.FixedLenFeature([], tf.string),
        "image/frame": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        "meta/split": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="covid19_images_epoch")
    augment = options.augment
    augment_splits = tf.constant(list(options.augment_splits) or [""])

    def parse(record: Any) -> tuple[Any, ...]:
        example = tf.io.parse_single_example(record, spec)
        pixels = tf.io.decode_image(example["image/encoded"], channels=channels, expand_animations=False)
        pixels.set_shape([None, None, channels])
        image = tf.cast(pixels, tf.float32)
        if size is not None:
            image = tf.round(tf.clip_by_value(tf.image.resize(image, size, method="bilinear", antialias=True), 0, 255))
            image.set_shape([size[0], size[1], channels])
        image = image * (1.0 / 255.0)
        if augment is not None:
            key = tf.strings.join([example["image/id"], tf.strings.as_string(example["image/frame"])], separator=":")
            seed = tf_seed(tf, options.seed, epoch, key)
            wanted = tf.reduce_any(tf.equal(augment_splits, example["meta/split"]))
            function = (lambda x, s: tf_light(tf, x, s)) if augment == "light" else augment
            image = tf.cond(wanted, lambda: function(image, seed), lambda: image)
        label = tf.cast(example["image/class/label"], tf.int32)
        return (image, label, example["image/id"]) if options.with_id else (image, label)

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=options.seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=max(1, min(4, len(files))),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shuffle:
        dataset = dataset.shuffle(options.shuffle_buffer or 1000, seed=options.seed, reshuffle_each_iteration=True)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if batch_size:
        dataset = dataset.batch(batch_size)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    settings = tf.data.Options()
    settings.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
    dataset = dataset.with_options(settings)
    dataset.classes = list(classes) if classes is not None else None
    dataset.files = list(files)
    dataset.epoch_variable = epoch
    dataset.set_epoch = lambda value: epoch.assign(int(value))
    return dataset
