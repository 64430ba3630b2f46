"""The libspng PNG path gives exactly the Pillow path's pixels (issue 14), on every real PNG and on odd PNG kinds."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covid19_images.imaging import decode
from covid19_images.imaging.formats import read_head, sniff_format
from covid19_images.imaging.png import fast_png_pixels

pytest.importorskip("pyspng")


def _pillow_only(path: Path) -> np.ndarray:
    """Pixels through the Pillow path, with the fast path switched off for this call."""
    original = decode.fast_png_pixels
    decode.fast_png_pixels = lambda *_args: None
    try:
        return decode.decode_file(path).pixels
    finally:
        decode.fast_png_pixels = original


def test_every_real_png_decodes_identically_and_most_take_the_fast_path(shared: Path) -> None:
    pngs = [p for p in sorted(shared.rglob("*")) if p.is_file() and sniff_format(read_head(p)) == "png"]
    assert len(pngs) > 20
    fast = 0
    for path in pngs:
        fast += fast_png_pixels(path, read_head(path)) is not None
        assert np.array_equal(decode.decode_file(path).pixels, _pillow_only(path)), path
    assert fast > len(pngs) // 2, f"only {fast} of {len(pngs)} real PNGs took the fast path"


@pytest.mark.parametrize(
    "mode, dtype, channels",
    [
        ("L", np.uint8, 1),
        ("RGB", np.uint8, 3),
        ("I;16", np.uint16, 1),
        ("RGBA", np.uint8, 4),
        ("P", np.uint8, 1),
        ("1", bool, 1),
    ],
)
def test_odd_png_kinds_decode_like_pillow(tmp_path: Path, mode: str, dtype, channels: int) -> None:
    rng = np.random.default_rng(0)
    shape = (37, 53) if channels == 1 else (37, 53, channels)
    if dtype is bool:
        image = Image.fromarray(rng.integers(0, 2, shape).astype(bool))
    elif mode == "P":
        image = Image.fromarray(rng.integers(0, 255, (37, 53, 3)).astype(np.uint8)).convert("P")
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 4096, shape).astype(np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 255, shape).astype(dtype), mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path = tmp_path / f"odd-{mode.replace(';', '')}.png"
    path.write_bytes(buffer.getvalue())
    assert np.array_equal(decode.decode_file(path).pixels, _pillow_only(path))


def test_threaded_decoding_gives_the_same_pixels_without_libspng(tmp_path: Path, monkeypatch) -> None:
    """libspng holds the GIL, so callers decoding in threads (the browser's thumbnails) go through Pillow."""
    rng = np.random.default_rng(1)
    path = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 255, (61, 47, 3)).astype(np.uint8)).save(path)
    single = decode.decode_file(path).pixels
    calls: list[Path] = []
    monkeypatch.setattr(decode, "fast_png_pixels", lambda p, head: calls.append(p) or fast_png_pixels(p, head))
    threaded = decode.decode_file(path, threaded=True).pixels
    assert calls == [] and np.array_equal(threaded, single)
    decode.decode_file(path)
    assert calls == [path]  # the one-thread path still takes libspng


def test_alpha_is_composited_on_black_exactly_as_pillow_does_for_every_value_and_alpha(tmp_path: Path) -> None:
    from covid19_images.imaging.png import composite_on_black

    alpha, value = np.divmod(np.arange(65536), 256)
    rgba = np.zeros((256, 256, 4), dtype=np.uint8)
    rgba[..., 0] = value.reshape(256, 256)
    rgba[..., 1] = 255 - value.reshape(256, 256)
    rgba[..., 2] = value.reshape(256, 256) // 3
    rgba[..., 3] = alpha.reshape(256, 256)
    background = Image.new("RGBA", (256, 256), (0, 0, 0, 255))
    pillow = np.asarray(Image.alpha_composite(background, Image.fromarray(rgba, "RGBA")).convert("RGB"))
    assert np.array_equal(composite_on_black(rgba), pillow)
    # and through the file: an RGBA PNG takes the fast path and equals the Pillow path
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    fast = fast_png_pixels(path, read_head(path))
    assert fast is not None
    assert np.array_equal(fast, _pillow_only(path))
