"""Augmentation for chest imaging, from each framework's own transforms, reproducible by seed.

``augment="light"`` is a small affine (rotation up to 7 degrees, scale 0.92-1.08,
translation up to 5 % of the side) and mild brightness/contrast (+-10 %). What it leaves
out is deliberate:

* **no vertical flip**: a chest image is never upside down in a scanner's output;
* **no horizontal flip** (for X-rays, and by default everywhere): the heart sits on the
  patient's left, the gastric bubble under the left hemidiaphragm, and radiographs carry
  L/R side markers; a mirrored film is an image of situs inversus with a wrong marker, a
  picture that does not exist in the data, and a flip teaches a model that laterality is
  noise when it is anatomy (dextrocardia, one-sided consolidations). Pass a callable if
  you want flips anyway;
* no elastic warps, crops or strong colour changes: apices and costophrenic angles must
  stay in the picture, and grey levels carry the finding.

Reproducibility: every random draw of one item comes from a generator seeded with
``hash(seed, epoch, item key)`` (the key is the image id and frame), so the augmented
tensor of an item does not depend on the number of DataLoader workers, the sampling
order or the rank; call ``set_epoch(epoch)`` each epoch, as with ``DistributedSampler``.
Only items whose split is in ``augment_splits`` (default train) are augmented. The same
holds for fastai: its ``aug_transforms`` run per item in the DataLoader under that seed
(:mod:`covid19_images.loaders.fastai_augment`), not per batch from the global RNG.

Masks and boxes: the torch augmenter takes ``(image, target)`` with torchvision
``tv_tensors`` (``Mask``, ``BoundingBoxes``) inside the target, and transforms v2 moves
them with the image (geometric part only; colour changes leave masks alone). TF's
``tf_light`` warps a mask with nearest sampling; fastai's affine moves the item's
``TensorMask`` (and points/boxes) in the same call as its image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

#: the "light" preset's parameters (shared by the torch, TF and fastai versions)
LIGHT = {"degrees": 7.0, "translate": 0.05, "scale": (0.92, 1.08), "brightness": 0.1, "contrast": 0.1}


def draw_seed(seed: int, epoch: int, key: str) -> int:
    """A 63-bit seed for one item in one epoch: stable across processes (no ``hash()`` salt)."""
    digest = hashlib.blake2b(f"{int(seed)}:{int(epoch)}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def item_key(image_id: str, frame: int) -> str:
    return f"{image_id}:{int(frame)}"


def torch_light() -> Any:
    """The "light" preset as torchvision transforms v2 (tv_tensors-aware: masks/boxes follow)."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomAffine(
                degrees=LIGHT["degrees"], translate=(LIGHT["translate"], LIGHT["translate"]), scale=LIGHT["scale"]
            ),
            v2.ColorJitter(brightness=LIGHT["brightness"], contrast=LIGHT["contrast"]),
        ]
    )


class TorchAugmenter:
    """``augmenter(image, target=None, key=..., epoch=...)``: the transform under a per-item seed.

    ``transform`` is the "light" preset or the user's callable; it is called as
    ``transform(image)`` or ``transform(image, target)``. The seed is set on a forked torch
    RNG, so the caller's random state is untouched and any torch-random callable is
    reproducible too.
    """

    def __init__(self, augment: Any, seed: int) -> None:
        self.transform: Callable[..., Any] = torch_light() if augment == "light" else augment
        self.seed = int(seed)

    def __call__(self, image: Any, target: Any = None, *, key: str, epoch: int) -> Any:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(draw_seed(self.seed, epoch, key))
            if target is None:
                return _plain(self.transform(_as_image(image)))
            augmented, target = self.transform(_as_image(image), target)
            return _plain(augmented), target


def _as_image(image: Any) -> Any:
    from torchvision import tv_tensors

    return image if isinstance(image, tv_tensors.TVTensor) else tv_tensors.Image(image)


def _plain(image: Any) -> Any:
    import torch

    return image.as_subclass(torch.Tensor) if isinstance(image, torch.Tensor) else image


def make_torch_augmenter(augment: Any, seed: int) -> TorchAugmenter | None:
    """None when ``augment`` is None; torchvision is imported only when augmentation is asked for."""
    if augment is None:
        return None
    from covid19_images.loaders import guard_tf_then_torchvision, require

    guard_tf_then_torchvision("torch")
    require("torchvision", "torch")
    return TorchAugmenter(augment, seed)


def fastai_light() -> list[Any]:
    """The "light" preset as fastai ``aug_transforms`` (flips off, no warp, zero padding).

    The fastai loader runs them per item, keyed like the torch and TF ones (see
    :mod:`covid19_images.loaders.fastai_augment`), not on the collated batch.
    """
    from fastai.vision.augment import aug_transforms

    return aug_transforms(
        do_flip=False,
        flip_vert=False,
        max_rotate=LIGHT["degrees"],
        min_zoom=LIGHT["scale"][0],
        max_zoom=LIGHT["scale"][1],
        max_lighting=LIGHT["brightness"],
        max_warp=0.0,
        p_affine=0.75,
        p_lighting=0.75,
        pad_mode="zeros",
    )


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
