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
(:mod:`covid19_images.loaders.fastai.augment`), not per batch from the global RNG.

This module is the framework-neutral part: the preset's numbers (:data:`LIGHT`) and the
per-item draw keys (:func:`draw_seed`, :func:`item_key`). Each framework's transforms live
in its room: :mod:`covid19_images.loaders.torch.augment`,
:mod:`covid19_images.loaders.tf.augment`, :mod:`covid19_images.loaders.fastai.augment`.

Masks and boxes: the torch augmenter takes ``(image, target)`` with torchvision
``tv_tensors`` (``Mask``, ``BoundingBoxes``) inside the target, and transforms v2 moves
them with the image (geometric part only; colour changes leave masks alone). TF's
``tf_light`` warps a mask with nearest sampling; fastai's affine moves the item's
``TensorMask`` (and points/boxes) in the same call as its image.
"""

from __future__ import annotations

import hashlib

#: the "light" preset's parameters (shared by the torch, TF and fastai versions)
LIGHT = {"degrees": 7.0, "translate": 0.05, "scale": (0.92, 1.08), "brightness": 0.1, "contrast": 0.1}


def draw_seed(seed: int, epoch: int, key: str) -> int:
    """A 63-bit seed for one item in one epoch: stable across processes (no ``hash()`` salt)."""
    digest = hashlib.blake2b(f"{int(seed)}:{int(epoch)}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def item_key(image_id: str, frame: int) -> str:
    return f"{image_id}:{int(frame)}"
