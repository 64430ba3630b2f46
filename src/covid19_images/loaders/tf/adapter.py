"""TensorFlow: a ``tf.data.Dataset`` of ``(image float32 [H, W, C] in [0, 1], label int32)``.

Decoding path, per item, chosen once at construction from the file header:

* baseline/progressive 8-bit JPEG with 1 or 3 components: ``tf.io.decode_jpeg`` with
  ``ratio=`` 2/4/8 when the image is at least that many times the target size (DCT-domain
  downscale), grey files as one channel; then ``tf.image.resize``: bilinear within 2x,
  "area" (a box low-pass) beyond, both far cheaper than TF's antialiased bilinear;
* 8-bit grey or RGB PNG: ``tf.io.decode_png`` then the same resize;
* 8-bit RGBA / grey+alpha PNG: ``decode_png`` with alpha, composited on black in TF
  (what the reader does: transparent margins of figure crops are background);
* everything else (DICOM, NIfTI, video, GIF, WebP, 16-bit or transparent-palette PNG,
  CMYK or EXIF-rotated JPEG)
  goes through ``tf.numpy_function`` on the shared reader, so those files give the same
  pixels as in torch (alpha composited on black, 16-bit windowed, DICOM VOI LUT applied)
  instead of TF's different conventions.

The routes are branches of one ``tf.switch_case`` inside a parallel ``map`` (AUTOTUNE,
order kept), followed by ``prefetch``. With ``cache=True`` the pixels come from the cache
file through ``FixedLengthRecordDataset`` + ``decode_raw``: no Python per item at all.

Import order: TensorFlow comes through :func:`covid19_images.loaders._frameworks.import_tensorflow`
(torchvision first when installed, so the user's own ``import torchvision`` afterwards is safe);
torch-side imports of the loaders that follow TensorFlow are guarded there too.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from covid19_images.loaders._frameworks import import_tensorflow
from covid19_images.loaders._manifest import selection_for
from covid19_images.loaders._options import Options
from covid19_images.loaders._pixels import load_item
from covid19_images.loaders.cache import open_cache
from covid19_images.loaders.tf.augment import tf_item_hook

RATIOS = (1, 2, 4, 8)
#: decoding branches: colour JPEG at each ratio, grey JPEG at each ratio, PNG, reader
ROUTE_JPEG_COLOUR = 0
ROUTE_JPEG_GRAY = len(RATIOS)
ROUTE_PNG_COLOUR = 2 * len(RATIOS)
ROUTE_PNG_GRAY = ROUTE_PNG_COLOUR + 1
ROUTE_PNG_ALPHA = ROUTE_PNG_GRAY + 1  # RGBA: composited on black, as the reader does
ROUTE_PNG_GRAY_ALPHA = ROUTE_PNG_ALPHA + 1
ROUTE_READER = ROUTE_PNG_GRAY_ALPHA + 1


def route_ratio(route: int) -> int | None:
    """The JPEG DCT scale denominator of a route (None for non-JPEG routes)."""
    return RATIOS[route % len(RATIOS)] if route < ROUTE_PNG_COLOUR else None


def _exif_orientation(body: bytes) -> int:
    """The EXIF Orientation tag (1 = as stored) from an APP1 segment body."""
    if not body.startswith(b"Exif\x00\x00") or len(body) < 14:
        return 1
    tiff = body[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    try:
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for entry in range(count):
            start = ifd + 2 + 12 * entry
            tag, _kind, _n = struct.unpack(order + "HHI", tiff[start : start + 8])
            if tag == 0x0112:
                return struct.unpack(order + "H", tiff[start + 8 : start + 10])[0]
    except struct.error:
        return 1
    return 1


def jpeg_info(path: str) -> tuple[int, int, int, int] | None:
    """``(SOF marker, precision, components, EXIF orientation)`` from a JPEG's header,
    None if it cannot be read (the reader then decides)."""
    orientation = 1
    try:
        with open(path, "rb") as handle:
            if handle.read(2) != b"\xff\xd8":
                return None
            for _ in range(256):
                byte = handle.read(1)
                while byte and byte != b"\xff":
                    byte = handle.read(1)
                marker = handle.read(1)
                while marker == b"\xff":
                    marker = handle.read(1)
                if not marker:
                    return None
                code = marker[0]
                if code in (0x01, 0xD8) or 0xD0 <= code <= 0xD7:
                    continue
                length_bytes = handle.read(2)
                if len(length_bytes) < 2:
                    return None
                length = struct.unpack(">H", length_bytes)[0]
                if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
                    body = handle.read(6)
                    if len(body) < 6:
                        return None
                    return code, body[0], body[5], orientation
                if code == 0xDA:
                    return None
                if code == 0xE1:
                    orientation = _exif_orientation(handle.read(length - 2))
                    continue
                handle.seek(length - 2, 1)
    except OSError:
        return None
    return None


def png_info(path: str) -> tuple[int, int, bool] | None:
    """``(bit depth, colour type, has tRNS)`` from a PNG's chunks before the image data."""
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            depth = kind = -1
            for _ in range(64):
                header = handle.read(8)
                if len(header) < 8:
                    return None
                length, name = struct.unpack(">I4s", header)
                if name == b"IHDR":
                    body = handle.read(length)
                    if len(body) < 10:
                        return None
                    depth, kind = body[8], body[9]
                    handle.seek(4, 1)
                    continue
                if name in (b"IDAT", b"IEND"):
                    return depth, kind, False
                if name == b"tRNS":
                    return depth, kind, True
                handle.seek(length + 4, 1)
    except (OSError, struct.error):
        return None
    return None


def route_for(path: str, fmt: str, width: int, height: int, size: tuple[int, int] | None) -> int:
    """Which decoding branch serves this file (see module docstring)."""
    if fmt == "jpeg":
        info = jpeg_info(path)
        if info is None or info[0] not in (0xC0, 0xC1, 0xC2) or info[1] != 8 or info[2] not in (1, 3):
            return ROUTE_READER  # arithmetic/12-bit/CMYK JPEG: the reader handles them
        if info[3] != 1:
            return ROUTE_READER  # EXIF-rotated: decode_jpeg ignores the orientation, the reader applies it
        base = ROUTE_JPEG_GRAY if info[2] == 1 else ROUTE_JPEG_COLOUR
        if size is None or width <= 0 or height <= 0:
            return base
        scale = min(width // size[1], height // size[0])
        return base + max(i for i, r in enumerate(RATIOS) if r <= max(scale, 1))
    if fmt == "png":
        info = png_info(path)
        if info is None or info[0] != 8:
            return ROUTE_READER  # 16-bit (windowed by the reader), 1/2/4-bit: the reader
        _depth, kind, transparent = info
        if kind == 0 and not transparent:
            return ROUTE_PNG_GRAY
        if kind in (2, 3) and not transparent:
            return ROUTE_PNG_COLOUR
        if kind == 4:
            return ROUTE_PNG_GRAY_ALPHA
        if kind == 6:
            return ROUTE_PNG_ALPHA
    return ROUTE_READER


def served_while_unchanged(tf: Any, dataset: Any, stamp: Any) -> Any:
    """``dataset`` whose elements pass only while the manifest is the one the loader was built from.

    The native routes read the files inside TensorFlow, so the stamp check (one ``stat``,
    :meth:`ManifestStamp.check`, raising ``ManifestChanged``) is part of the graph. It runs
    once per served element - per batch when the loader batches - in a sequential map after
    the decode: every file of the element has been read by then, so an element is refused if a
    sync finished before or while its files were read (a check before each read missed a sync
    that finished between the check and the read). Per batch rather than per item because
    the ``tf.numpy_function`` call, not the ``stat``, is what costs (0.4-2 ms per item on
    two busy cores, see docs/benchmarks.md).
    """

    def check() -> bool:
        stamp.check()
        return True

    def checked(*element: Any) -> Any:
        done = tf.numpy_function(check, [], tf.bool, stateful=True)
        with tf.control_dependencies([done]):
            return tuple(tf.identity(part) for part in element)

    return dataset.map(checked)


def make_tf_dataset(
    options: Options,
    batch_size: int | None = None,
    shuffle: bool = False,
    prefetch: bool = True,
) -> Any:
    """A ``tf.data.Dataset`` of ``(image float32 [H, W, C], label int32)``.

    The returned dataset carries ``classes``, ``class_to_idx`` and ``manifest`` attributes
    (lost by later transforms such as ``.batch()``: read them first).

    Args:
        options: the validated shared options.
        batch_size: batch before the final prefetch; None serves single items.
        shuffle: shuffle the (cheap) file list before decoding (seeded by ``options.seed``).
        prefetch: end the pipeline with ``prefetch(AUTOTUNE)``.
    """
    from covid19_images.loaders.tasks import needs_task_selection  # issue 13

    if needs_task_selection(options):
        from covid19_images.loaders.tf.tasks import make_tf_task_dataset

        return make_tf_task_dataset(options, batch_size, shuffle, options.seed, prefetch)
    tf = import_tensorflow()
    selection = selection_for(options)
    items = selection.items
    size, channels = options.image_size, options.channels
    labels = items["label_index"].to_numpy(dtype=np.int32)
    autotune = tf.data.AUTOTUNE
    post, meta = tf_item_hook(tf, options, items)  # issue 12: with_id, augment

    if options.cache:
        assert size is not None
        cache = open_cache(selection, size, channels, options.cache_directory)
        records = tf.data.FixedLengthRecordDataset(
            str(cache.path), record_bytes=cache.record_bytes, header_bytes=cache.offset
        )
        dataset = tf.data.Dataset.zip((records, tf.data.Dataset.from_tensor_slices(labels), meta))
        if shuffle:
            dataset = dataset.shuffle(len(items), seed=options.seed, reshuffle_each_iteration=True)
        shape = [size[0], size[1], channels]

        def from_record(record: Any, label: Any, item: Any) -> tuple[Any, ...]:
            pixels = tf.reshape(tf.io.decode_raw(record, tf.uint8), shape)
            return post(tf.cast(pixels, tf.float32) * (1.0 / 255.0), label, item)

        dataset = dataset.map(from_record, num_parallel_calls=autotune)
    else:
        files = items["file"].tolist()
        formats = items["format"].astype(str).tolist()
        widths = items["width"].fillna(0).astype(int).tolist()
        heights = items["height"].fillna(0).astype(int).tolist()
        routes = np.array(
            [route_for(f, m, w, h, size) for f, m, w, h in zip(files, formats, widths, heights, strict=True)],
            dtype=np.int32,
        )
        frames = items["frame"].to_numpy(dtype=np.int64)
        dataset = tf.data.Dataset.zip(
            (tf.data.Dataset.from_tensor_slices((files, frames, formats, routes, labels)), meta)
        ).map(lambda main, item: (*main, item))
        if shuffle:
            dataset = dataset.shuffle(len(items), seed=options.seed, reshuffle_each_iteration=True)

        def read_with_reader(path: bytes, frame: np.int64, fmt: bytes) -> np.ndarray:
            return load_item(path.decode(), int(frame), fmt.decode(), size, channels)

        def finish(pixels: Any, decoded_channels: int) -> Any:
            # grey files are decoded and resized as one channel (a third of the resize work)
            # and replicated afterwards, like the reader path does
            pixels.set_shape([None, None, decoded_channels])
            if size is None:
                image = tf.cast(pixels, tf.float32)
            else:
                # Shrinking more than 2x needs a low-pass filter or it aliases; TF's antialiased
                # bilinear (ScaleAndTranslate) costs more than the decode itself, so use "area"
                # (box filter) there. Within 2x - where DCT-scaled JPEGs always land - plain
                # bilinear already weighs every input pixel.
                shape = tf.shape(pixels)[:2]
                target = tf.constant(size, dtype=shape.dtype)
                resized = tf.cond(
                    tf.reduce_any(shape > 2 * target),
                    lambda: tf.image.resize(pixels, size, method="area"),
                    lambda: tf.image.resize(pixels, size, method="bilinear"),
                )
                # back to whole grey levels, as the uint8 path (torch, cache) has: same value set everywhere
                image = tf.round(tf.clip_by_value(resized, 0.0, 255.0))
            if decoded_channels != channels:
                image = tf.tile(image, [1, 1, channels])
            return image

        def decode(path: Any, frame: Any, fmt: Any, route: Any, label: Any, item: Any) -> tuple[Any, ...]:
            def jpeg(ratio: int, gray: bool) -> Any:
                wanted = 1 if gray else channels
                return lambda: finish(tf.io.decode_jpeg(tf.io.read_file(path), channels=wanted, ratio=ratio), wanted)

            def png(gray: bool) -> Any:
                wanted = 1 if gray else channels
                return lambda: finish(tf.io.decode_png(tf.io.read_file(path), channels=wanted, dtype=tf.uint8), wanted)

            def png_alpha(gray: bool) -> Any:
                def run() -> Any:
                    # channels=4 also for grey+alpha (TF has no 2-channel output): grey comes back replicated
                    decoded = tf.cast(tf.io.decode_png(tf.io.read_file(path), channels=4), tf.float32)
                    value, alpha = (decoded[..., :1] if gray else decoded[..., :3]), decoded[..., 3:]
                    if gray:  # the reader: grey * alpha // 255
                        return finish(tf.floor(value * alpha / 255.0), 1)
                    composited = tf.round(value * (alpha / 255.0))  # on black, like PIL's alpha_composite
                    if channels == 1:
                        composited = tf.round(tf.image.rgb_to_grayscale(composited))
                    return finish(composited, channels)

                return run

            def reader() -> Any:
                pixels = tf.numpy_function(read_with_reader, [path, frame, fmt], tf.uint8, stateful=False)
                pixels.set_shape([*(size or (None, None)), channels])
                return tf.cast(pixels, tf.float32)

            branches = [
                *(jpeg(r, gray=False) for r in RATIOS),
                *(jpeg(r, gray=True) for r in RATIOS),
                png(gray=False),
                png(gray=True),
                png_alpha(gray=False),
                png_alpha(gray=True),
                reader,
            ]
            image = tf.switch_case(route, branches)
            image.set_shape([*(size or (None, None)), channels])
            return post(image * (1.0 / 255.0), label, item)

        dataset = dataset.map(decode, num_parallel_calls=autotune, deterministic=True)
    if batch_size:
        dataset = dataset.batch(batch_size)
    if not options.cache and selection.stamp is not None:
        dataset = served_while_unchanged(tf, dataset, selection.stamp)
    if prefetch:
        dataset = dataset.prefetch(autotune)
    else:  # no buffer after the stamp check at all: tf.data would otherwise inject a prefetch here
        unbuffered = tf.data.Options()
        unbuffered.experimental_optimization.inject_prefetch = False
        dataset = dataset.with_options(unbuffered)
    dataset.set_epoch = post.set_epoch
    dataset.classes = list(selection.classes)
    dataset.class_to_idx = {c: i for i, c in enumerate(selection.classes)}
    dataset.manifest = items.drop(columns=["file", "label_index"])
    return dataset
