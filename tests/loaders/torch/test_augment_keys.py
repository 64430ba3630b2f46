"""The frame is part of the augmentation key: two frames of one file get their own draws."""

from __future__ import annotations

import pytest

from covid19_images.loaders.augment import item_key

torch = pytest.importorskip("torch")


def test_each_frame_of_an_image_gets_its_own_draw_and_the_same_frame_the_same_one() -> None:
    from covid19_images.loaders.torch.augment import make_torch_augmenter

    augment = make_torch_augmenter("light", 7)
    image = torch.linspace(0, 1, 3 * 40 * 40).reshape(3, 40, 40)
    first = augment(image.clone(), key=item_key("abc", 0), epoch=0)
    again = augment(image.clone(), key=item_key("abc", 0), epoch=0)
    other_frame = augment(image.clone(), key=item_key("abc", 1), epoch=0)
    assert torch.equal(first, again)
    assert not torch.equal(first, other_frame)
    assert item_key("abc", 1) != item_key("abc", 0) and item_key("abc", 12) != item_key("abc1", 2)
