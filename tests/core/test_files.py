"""The shared file-name rules (core/files.py) on the shapes upstream zips really have."""

from __future__ import annotations

import itertools
from pathlib import PurePosixPath

import pytest

from covid19_images.core.files import (
    IMAGE_SUFFIXES,
    JPEG_PNG_SUFFIXES,
    MACOS_FOLDER,
    is_image_name,
    is_macos_debris,
    largest_copy,
)


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


def test_name_rules_agree_with_pathlib_on_every_shape_of_path() -> None:
    """The string fast path (normal paths) must answer as ``PurePosixPath`` does, odd paths included."""

    def debris(relative: str) -> bool:
        path = PurePosixPath(relative)
        return MACOS_FOLDER in path.parts or path.name.startswith("._")

    parts = ["a", "b.png", "._x.png", MACOS_FOLDER, ".", "", "..", ".png", "x.", "x.PNG", "a.b.jpg", ".hidden"]
    for count in (1, 2, 3):
        for combo in itertools.product(parts, repeat=count):
            joined = "/".join(combo)
            for relative in (joined, "/" + joined, joined + "/", "./" + joined):
                assert is_macos_debris(relative) == debris(relative), relative
                expected = PurePosixPath(relative).suffix.lower() in IMAGE_SUFFIXES and not debris(relative)
                assert is_image_name(relative) == expected, relative
