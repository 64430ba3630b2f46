"""Loader arguments validated by type (issue 14); the lead ports the validation into loaders/_options.py.

``image_size="22"`` gave 2 x 2 images, ``channels=True`` one channel, ``numpy.int64(224)``
was refused as "must be an int" and ``(224.9, 100.2)`` was truncated. Expected: strings
and booleans refused with TypeError, NumPy integers accepted like ints, non-integer floats refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from covid19_images.loaders import load
from tests.conftest import build_synced_root

pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("loader-arguments")]
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("loader-arguments"), mirrors, ("ieee8023-covid-chestxray",))


def _load(root: Path, **options):
    return load("xray", "torch", root=root, split=None, **options)


@pytest.mark.parametrize("size", ["22", "224", b"22", ("22", "22"), ["224", 224]])
def test_image_size_as_text_is_refused_with_type_error(root: Path, size) -> None:
    with pytest.raises(TypeError, match="image_size"):
        _load(root, image_size=size)


@pytest.mark.parametrize("size", [True, False, (True, 224), (224, False)])
def test_image_size_as_bool_is_refused(root: Path, size) -> None:
    with pytest.raises(TypeError, match="image_size"):
        _load(root, image_size=size)


@pytest.mark.parametrize("channels", [True, False, "3"])
def test_channels_of_the_wrong_type_is_refused(root: Path, channels) -> None:
    with pytest.raises(TypeError, match="channels"):
        _load(root, channels=channels)


@pytest.mark.parametrize("integer", [np.int64, np.int32, np.uint16])
def test_numpy_integers_are_accepted_like_ints(root: Path, integer) -> None:
    dataset = _load(root, image_size=integer(40), channels=integer(1))
    image, _label = dataset[0]
    assert tuple(image.shape) == (1, 40, 40)
    pair = _load(root, image_size=(integer(40), integer(24)))
    assert tuple(pair[0][0].shape) == (3, 40, 24)


@pytest.mark.parametrize("size", [224.9, (224.9, 100.2), (224, 100.5), float("nan"), float("inf")])
def test_non_integer_floats_are_refused_not_truncated(root: Path, size) -> None:
    with pytest.raises((TypeError, ValueError), match="image_size"):
        _load(root, image_size=size)
