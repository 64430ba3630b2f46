"""TensorFlow's augmentation: the "light" preset with stateless ``tf.image`` / raw ops, seeded per item.

The policy (what "light" does and leaves out, and why) and the draw keys are framework-neutral:
:mod:`covid19_images.loaders.augment`.
"""

from __future__ import annotations

from typing import Any

from covid19_images.loaders.augment import LIGHT, item_key


def tf_light_affine(tf: Any, shape: Any, seed: Any) -> tuple[Any, Any]:
    """The "light" preset's random affine for an image of ``shape`` (``[H, W, ...]``): ``(transform, seeds)``.

    ``transform`` is the ``[1, 8]`` projective transform ``ImageProjectiveTransformV3`` takes
    (it maps each *output* pixel to the input pixel it samples); ``seeds`` are the remaining
    stateless seeds for the colour changes. Shared by the image, mask and box warps so all
    three get the same draw.
    """
    import math

    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=6)
    angle = tf.random.stateless_uniform([], seeds[0], -LIGHT["degrees"], LIGHT["degrees"]) * (math.pi / 180.0)
    scale = tf.random.stateless_uniform([], seeds[1], LIGHT["scale"][0], LIGHT["scale"][1])
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    dx = tf.random.stateless_uniform([], seeds[2], -LIGHT["translate"], LIGHT["translate"]) * width
    dy = tf.random.stateless_uniform([], seeds[3], -LIGHT["translate"], LIGHT["translate"]) * height
    # output pixel (x, y) samples input at inverse(rotate*scale about centre, then shift)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    ox, oy = cx + dx, cy + dy
    a0, a1, b0, b1 = cos, -sin, sin, cos
    a2 = cx - a0 * ox - a1 * oy
    b2 = cy - b0 * ox - b1 * oy
    return tf.reshape(tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0]), [1, 8]), seeds


def tf_light(tf: Any, image: Any, seed: Any, mask: Any = None, boxes: Any = None) -> Any:
    """The "light" preset with stateless ``tf.image`` / raw ops: ``seed`` is a [2] int tensor.

    The affine (rotation, scale, translation about the centre) goes through
    ``ImageProjectiveTransformV3`` (bilinear for the image, nearest for a mask, zero fill);
    brightness/contrast through ``tf.image.stateless_random_*``. Returns the image,
    ``(image, mask)`` when a mask is given, or ``(image, boxes, kept)`` when ``boxes``
    (``[N, 4]`` XYXY pixels) are given: see :func:`tf_warp_boxes`.
    """
    shape = tf.shape(image)
    transform, seeds = tf_light_affine(tf, shape, seed)

    def warp(pixels: Any, interpolation: str) -> Any:
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=tf.cast(pixels, tf.float32)[None],
            transforms=transform,
            output_shape=shape[:2],
            fill_value=0.0,
            interpolation=interpolation,
            fill_mode="CONSTANT",
        )[0]

    out = warp(image, "BILINEAR")
    out = tf.image.stateless_random_brightness(out, LIGHT["brightness"], seed=seeds[4])
    out = tf.image.stateless_random_contrast(out, 1 - LIGHT["contrast"], 1 + LIGHT["contrast"], seed=seeds[5])
    out = tf.clip_by_value(out, 0.0, 1.0)
    if boxes is not None:
        return (out, *tf_warp_boxes(tf, boxes, transform, shape[0], shape[1]))
    if mask is None:
        return out
    return out, tf.cast(warp(mask, "NEAREST"), mask.dtype)


def tf_warp_boxes(tf: Any, boxes: Any, transform: Any, height: Any, width: Any) -> tuple[Any, Any]:
    """Move XYXY pixel boxes with an image warped by ``transform``: ``(boxes [M, 4], kept [M] indices)``.

    ``transform`` maps output pixel indices to input ones (``ImageProjectiveTransformV3``),
    so its affine part is inverted; box edges are continuous coordinates (pixel ``i`` spans
    ``[i, i + 1]``), hence the half-pixel shifts. Each box becomes the bounding box of its
    four moved corners, clipped to the canvas; boxes left with no area are dropped (as
    torchvision's ``SanitizeBoundingBoxes`` and fastai's ``clip_remove_empty`` do), and
    ``kept`` says which, to gather their labels.
    """
    t = tf.reshape(tf.cast(transform, tf.float32), [8])
    forward = tf.linalg.inv(tf.reshape(tf.stack([t[0], t[1], t[3], t[4]]), [2, 2]))
    boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
    x0, y0, x1, y1 = tf.unstack(boxes, axis=1)
    corners = tf.stack([tf.stack(c, axis=-1) for c in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))], axis=1)
    source = corners - 0.5 - tf.stack([t[2], t[5]])  # [N, 4 corners, (x, y)]
    moved = tf.einsum("ij,nkj->nki", forward, source) + 0.5
    low = tf.reduce_min(moved, axis=1)
    high = tf.reduce_max(moved, axis=1)
    limit = tf.stack([tf.cast(width, tf.float32), tf.cast(height, tf.float32)])
    low, high = tf.clip_by_value(low, 0.0, limit), tf.clip_by_value(high, 0.0, limit)
    kept = tf.where(tf.reduce_all(high > low, axis=1))[:, 0]
    out = tf.gather(tf.concat([low, high], axis=1), kept)
    return out, kept


def tf_seed(tf: Any, seed: int, epoch: Any, key: Any) -> Any:
    """The [2] stateless seed of one element: (seed, epoch) folded with a hash of its key string."""
    bucket = tf.strings.to_hash_bucket_fast(key, 2**62)
    base = tf.stack([tf.constant(int(seed), tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_fold_in(base, bucket)


def tf_item_hook(tf: Any, options: Any, items: Any) -> tuple[Any, Any]:
    """The TF map-style loader's hook: ``(post, meta)``. ``meta`` is a dataset of (image_id, augmentation key,
    split) aligned with the items; ``post(image, label, meta)`` augments items of
    ``augment_splits`` (stateless seeds from seed, epoch, key: see ``loaders.augment``) and
    appends the image id when ``with_id``. ``post.set_epoch(n)`` sets the epoch variable."""
    ids = items["image_id"].astype(str).tolist()
    keys = [item_key(i, f) for i, f in zip(ids, items["frame"].astype(int), strict=True)]
    meta = tf.data.Dataset.from_tensor_slices((ids, keys, items["split"].astype(str).tolist()))
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    splits = tf.constant(list(options.augment_splits) or [""])
    augment = options.augment
    function = (lambda image, seed: tf_light(tf, image, seed)) if augment == "light" else augment

    def post(image: Any, label: Any, item: Any) -> tuple[Any, ...]:
        image_id, key, split = item
        if augment is not None:
            seed = tf_seed(tf, options.seed, epoch, key)
            image = tf.cond(tf.reduce_any(tf.equal(splits, split)), lambda: function(image, seed), lambda: image)
        return (image, label, image_id) if options.with_id else (image, label)

    post.set_epoch = lambda value: epoch.assign(int(value))  # type: ignore[attr-defined]
    return post, meta
