"""The perceptual hash's DCT: the 16 x 16 low-frequency corner by matrix products, checked against SciPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.fft import dctn, idctn

import covid19_images
from covid19_images.imaging.fingerprints import PHASH_SIZE, normalised_thumbnail, phash_of_thumbnail
from tests.fresh_imports import packages_imported

CATALOG = Path(covid19_images.__file__).parent / "sources" / "catalog"


def _scipy_phash(thumb: np.ndarray) -> tuple[str, np.ndarray]:
    """The hash as it was computed with ``scipy.fft.dctn`` before, and its coefficients."""
    corner = dctn(thumb.astype(np.float64), type=2, norm="ortho")[:PHASH_SIZE, :PHASH_SIZE].ravel()
    bits = corner > np.median(corner[1:])
    bits[0] = False
    return np.packbits(bits).tobytes().hex(), corner


def _miniature_thumbnails() -> list[np.ndarray]:
    files = sorted(p for p in CATALOG.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    thumbs = []
    for path in files:
        if "mask" in str(path).lower():
            continue
        with Image.open(path) as image:
            thumbs.append(normalised_thumbnail(np.asarray(image.convert("L"))))
    return thumbs


def test_every_miniature_picture_hashes_as_scipys_dct_did() -> None:
    compared = 0
    for thumb in _miniature_thumbnails():
        want, corner = _scipy_phash(thumb)
        gaps = np.abs(corner[1:] - np.median(corner[1:]))
        if not thumb.any() or np.sort(gaps)[1] < 1e-9:
            continue  # a near-tie at the median (masks, flat pictures): rounding decides those bits either way
        assert phash_of_thumbnail(thumb) == want
        compared += 1
    assert compared > 100


@pytest.mark.parametrize("seed", range(3))
def test_the_hash_reads_the_same_corner_scipy_computes(seed: int) -> None:
    thumb = np.random.default_rng(seed).standard_normal((64, 64)).astype(np.float32)
    want, _corner = _scipy_phash(thumb)
    assert phash_of_thumbnail(thumb) == want


def test_each_bit_says_whether_its_frequency_is_above_the_median() -> None:
    rng = np.random.default_rng(11)
    chosen = rng.permutation(PHASH_SIZE * PHASH_SIZE).astype(np.float64)  # distinct: no ties
    spectrum = np.zeros((64, 64))
    spectrum[:PHASH_SIZE, :PHASH_SIZE] = chosen.reshape(PHASH_SIZE, PHASH_SIZE)
    thumb = idctn(spectrum, type=2, norm="ortho")
    expected = chosen > np.median(chosen[1:])
    expected[0] = False
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(phash_of_thumbnail(thumb)), dtype=np.uint8)).astype(bool)
    assert bits.tolist() == expected.tolist()
    assert bits.sum() == 127


def test_a_flat_picture_has_no_hash() -> None:
    assert phash_of_thumbnail(np.zeros((64, 64), dtype=np.float32)) == ""


def test_hashing_imports_no_fft() -> None:
    code = (
        "import numpy as np; from covid19_images.imaging.fingerprints import perceptual_hash; "
        "perceptual_hash(np.arange(4096, dtype=np.uint8).reshape(64, 64))"
    )
    assert packages_imported(code, ("scipy",)) == []
