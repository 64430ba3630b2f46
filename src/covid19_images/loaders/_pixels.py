"""One served item -> uint8 ``(H, W, C)`` pixels: decode, channel conversion, resize.

Torch, fastai, the cache and TensorFlow's fallback route (DICOM, NIfTI, video, WebP, 16-bit
and palette images, through ``tf.numpy_function``) all call :func:`load_item`, so for them a
cached pixel is bit-identical to a freshly decoded one.

TensorFlow's native route is the exception, on purpose: 8-bit JPEG and PNG decode with TF
ops (``decode_jpeg(ratio=)`` DCT downscaling, ``tf.image.resize`` bilinear/area) to keep the
pipeline in graph. Those pixels differ from :func:`load_item` by a few grey levels (mean
absolute difference below 3 per image, below 1.5 on average over the sample X-rays, held by
``tests/loaders/tf/test_adapter.py::test_tf_pixels_agree_with_the_shared_reader``). With
``cache=True`` the TF loader reads :func:`load_item`'s pixels from the cache, so TF output
with and without the cache differs by that same amount.
"""

from __future__ import annotations

import numpy as np

from covid19_images.imaging.decode import read_pixels

#: bump when load_item's output changes for the same input (part of the cache key).
PIPELINE_VERSION = "2"


def load_item(
    path: str,
    frame: int = 0,
    fmt: str | None = None,
    size: tuple[int, int] | None = (224, 224),
    channels: int = 3,
) -> np.ndarray:
    """Decode one 2-D item and squash it to ``size`` = (height, width).

    JPEGs decode at a DCT-reduced scale no smaller than the target (``draft_size``), which
    is where most of the speed over decode-then-resize comes from. Gray images are
    converted before the resize (a third of the work) and replicated to 3 channels after.
    The resize is bilinear with antialiasing (Pillow's ``resize`` widens its kernel when
    shrinking), the same filter torchvision's ``Resize`` uses by default.
    """
    from PIL import Image

    draft = (size[1], size[0]) if size is not None else None
    pixels = read_pixels(path, frame=int(frame), fmt=fmt or None, draft_size=draft)
    if channels == 1 and pixels.ndim == 3:
        pixels = np.asarray(Image.fromarray(pixels).convert("L"))
    if size is not None and pixels.shape[:2] != size:
        image = Image.fromarray(pixels)
        # reducing_gap=3: when the image is at least 6x the target on a side, Pillow first
        # box-reduces it by int(ratio / 3) (cheap), leaving a resample of at least 3x, which
        # Pillow documents as indistinguishable from a fair resample in most cases (large
        # PNGs, DICOM localizers); below 6x it resamples in one step
        pixels = np.asarray(image.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=3.0))
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
        if channels == 3:
            pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels, dtype=np.uint8)
