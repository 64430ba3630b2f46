"""The shared file-name rules (core/files.py) on the shapes upstream zips really have."""

from __future__ import annotations

import pytest

from covid19_images.core.files import JPEG_PNG_SUFFIXES, is_image_name, is_macos_debris, largest_copy


@pytest.mark.parametrize(
    ("relative", "debris"),
    [
        ("__MACOSX/chest_xray/train/NORMAL/._IM-0115-0001.jpeg", True),
        ("chest_xray/__MACOSX/test/x.jpeg", True),
        ("CT_COVID/._2020.01.24.919183-p27-132.png", True),
        ("chest_xray/train/NORMAL/IM-0115-0001.jpeg", False),
        ("images/_underscore_is_fine.png", False),
    ],
)
def test_macos_debris(relative: str, debris: bool) -> None:
    assert is_macos_debris(relative) is debris


def test_image_names_by_suffix_in_any_case_without_debris() -> None:
    assert is_image_name("CT_COVID/a.PNG") and is_image_name("x/b.tiff") and is_image_name("c.JPEG")
    assert not is_image_name("metadata.csv") and not is_image_name("CT_COVID.zip")
    assert not is_image_name("__MACOSX/CT_COVID/a.png") and not is_image_name("CT_COVID/._a.png")
    assert is_image_name("a.bmp") and not is_image_name("a.bmp", JPEG_PNG_SUFFIXES)


def test_largest_copy_prefers_most_files_then_shallowest_then_shortest() -> None:
    assert largest_copy({"chest_xray": ["a", "b"], "": ["a", "b", "c"]}) == ""
    # the Kaggle zip nests a second identical copy: the outer one wins a tie
    assert largest_copy({"chest_xray/chest_xray": ["a", "b"], "chest_xray": ["a", "b"]}) == "chest_xray"
    assert largest_copy({"Images": ["a"], "Images-processed": ["a"]}) == "Images"
    assert largest_copy({"b": ["a"], "a": ["a"]}) == "a"
    with pytest.raises(ValueError):
        largest_copy({})
