"""The stream's fast decode of exported PNGs gives exactly the Pillow path's pixels (issue 23).

An export stores each image as the PNG ``export.common.encode_png`` writes (grey when the
channels are equal, RGB otherwise) at the training size; the stream decodes those with
libspng. The reference here is Pillow written out in the test (open, convert, resize), as the
stream did before, on the real X-rays of the samples.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from covid19_images.export.common import encode_png
from covid19_images.imaging.decode import decode_file
from covid19_images.imaging.formats import read_head, sniff_format

pytest.importorskip("torch")
pytest.importorskip("pyspng")
from covid19_images.loaders.torch import streaming

pytestmark = [pytest.mark.framework]


def _pillow(data: bytes, size: tuple[int, int] | None, channels: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        if size is not None and (image.height, image.width) != tuple(size):
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=3.0)
        pixels = np.asarray(image)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _real_xrays(shared: Path, count: int = 12) -> list[np.ndarray]:
    """Pixels of real sample images cropped to at most 96 px (a small export): grey ones and at least
    two in colour (channels that differ), wherever in the samples they are; the miniatures hold the
    colour ones far down the sorted tree (ultrasound frames, figures of papers)."""
    grey: list[np.ndarray] = []
    colour: list[np.ndarray] = []
    for path in sorted(shared.rglob("*")):
        if not (path.is_file() and sniff_format(read_head(path)) in ("png", "jpeg")):
            continue
        pixels = decode_file(path).pixels[:96, :96]
        in_colour = pixels.ndim == 3 and not (pixels == pixels[:, :, :1]).all()
        (colour if in_colour else grey).append(pixels)
        if len(grey) >= count - 2 and len(colour) >= 2:
            break
    return grey[: count - 2] + colour[:2]


def _exported_png(pixels: np.ndarray) -> bytes:
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2)
    return encode_png(rgb)


@pytest.mark.parametrize("channels", [3, 1])
def test_exported_pngs_decode_exactly_as_pillow_and_take_the_fast_path(shared: Path, channels: int) -> None:
    images = _real_xrays(shared)
    kinds = set()
    fast = 0
    for pixels in images:
        data = _exported_png(pixels)
        kinds.add(data[25])
        size = (pixels.shape[0], pixels.shape[1])
        got = streaming.decode_image(data, size, channels)
        assert got.dtype == np.uint8 and got.shape == (*size, channels)
        assert np.array_equal(got, _pillow(data, size, channels))
        fast += streaming._export_png(data, size, channels) is not None
    assert kinds == {0, 2}, "the sample should give grey and colour exports"
    # grey PNGs always take libspng; colour ones too unless a grey view is asked (Pillow's luma)
    assert fast >= (len(images) if channels == 3 else 1)


def test_pngs_needing_a_resize_or_with_alpha_stay_with_pillow(shared: Path) -> None:
    pixels = _real_xrays(shared, 1)[0]
    data = _exported_png(pixels)
    other = (pixels.shape[0] // 2, pixels.shape[1] // 2)
    assert streaming._export_png(data, other, 3) is None
    assert np.array_equal(streaming.decode_image(data, other, 3), _pillow(data, other, 3))
    grey = pixels if pixels.ndim == 2 else pixels[..., 0]
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 7)])
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    data, size = buffer.getvalue(), grey.shape
    assert streaming._export_png(data, size, 3) is None  # Pillow's RGB drops alpha; libspng would composite
    assert np.array_equal(streaming.decode_image(data, size, 3), _pillow(data, size, 3))


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_stream_items_are_the_same_tensors_as_from_pillow_pixels(shared: Path, dtype: str) -> None:
    """Through ``ShardStream._item`` itself (its settings given directly, no shard needed)."""
    import torch

    for pixels in _real_xrays(shared, 4):
        size = pixels.shape[:2]
        options = SimpleNamespace(image_size=size, channels=3, augment_splits=(), with_id=True)
        stream = SimpleNamespace(options=options, dtype=dtype, augmenter=None, transform=None, target_transform=None)
        sample = {"json": b'{"image_id": "abc", "split": "val"}', "png": _exported_png(pixels), "cls": b"1"}
        image, label, image_id = streaming.ShardStream._item(stream, sample)
        reference = torch.from_numpy(np.ascontiguousarray(_pillow(sample["png"], size, 3).transpose(2, 0, 1)))
        if dtype == "float32":
            reference = reference.to(torch.float32) * np.float32(1.0 / 255.0)
        assert image.dtype == reference.dtype and torch.equal(image, reference)
        assert (label, image_id) == (1, "abc")
