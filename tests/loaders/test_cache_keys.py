"""The cache key and the cache file check, without a framework: fast enough for mutation testing.

The end-to-end versions (real sync, real loads, real edits) are in ``tests/loaders/test_cache.py``;
these pin the same promises on hand-made selections: the key changes exactly when an item's
content, frame, order or count, the settings or the reader change; a file that is not
exactly one complete array of the expected shape is never opened as a cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covid19_images.loaders._select import Selection
from covid19_images.loaders.cache import _open_valid, cache_key


def selection(tmp_path: Path, shas: list[str], frames: list[int] | None = None) -> Selection:
    files = []
    for index in range(len(shas)):
        path = tmp_path / f"f{index}.png"
        path.write_bytes(b"x" * (index + 1))
        files.append(str(path))
    items = pd.DataFrame({"sha256": shas, "file": files, "frame": frames or [0] * len(shas)})
    return Selection(items, ("a", "b"), tmp_path)


SHAS = ["a" * 64, "b" * 64, "c" * 64]


def test_key_is_a_stable_function_of_items_and_settings(tmp_path: Path) -> None:
    key = cache_key(selection(tmp_path, SHAS), (64, 64), 3)
    assert len(key) == 40 and int(key, 16) >= 0
    assert cache_key(selection(tmp_path, list(SHAS)), (64, 64), 3) == key
    different = {
        "content": cache_key(selection(tmp_path, ["a" * 64, "d" * 64, "c" * 64]), (64, 64), 3),
        "frame": cache_key(selection(tmp_path, SHAS, [0, 1, 0]), (64, 64), 3),
        "order": cache_key(selection(tmp_path, SHAS[::-1]), (64, 64), 3),
        "count": cache_key(selection(tmp_path, SHAS[:2]), (64, 64), 3),
        "height": cache_key(selection(tmp_path, SHAS), (65, 64), 3),
        "width": cache_key(selection(tmp_path, SHAS), (64, 65), 3),
        "channels": cache_key(selection(tmp_path, SHAS), (64, 64), 1),
    }
    assert key not in different.values()
    assert len(set(different.values())) == len(different)


def test_frames_are_part_of_the_key_item_by_item(tmp_path: Path) -> None:
    """Frames (1, 0) and (0, 1) of two items are different pixels, not a reordering."""
    one = cache_key(selection(tmp_path, SHAS[:2], [1, 0]), (8, 8), 1)
    other = cache_key(selection(tmp_path, SHAS[:2], [0, 1]), (8, 8), 1)
    assert one != other


def test_item_without_content_hash_is_keyed_by_its_file(tmp_path: Path) -> None:
    """No ``sha256`` (not a built manifest): the file's size and mtime stand in, so editing the
    file still changes the key."""
    plain = selection(tmp_path, ["", ""])
    key = cache_key(plain, (8, 8), 1)
    assert cache_key(plain, (8, 8), 1) == key
    Path(plain.items["file"][1]).write_bytes(b"another content, another size")
    assert cache_key(plain, (8, 8), 1) != key


def test_reader_code_is_part_of_the_key(tmp_path: Path) -> None:
    """The same package copied elsewhere gives the same key; with ``decode.py`` or the pixel
    pipeline edited (a reader fix) it gives another."""
    import covid19_images

    package = Path(covid19_images.__file__).parent
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import pandas as pd
        from covid19_images.loaders._select import Selection
        from covid19_images.loaders.cache import cache_key

        items = pd.DataFrame({"sha256": ["a" * 64], "file": ["x"], "frame": [0]})
        print(cache_key(Selection(items, ("a",), Path(".")), (8, 8), 1))
        """
    )

    def key_with(edit: str | None) -> str:
        copy = tmp_path / (edit or "same").replace("/", "-")
        shutil.copytree(package, copy / "covid19_images", ignore=shutil.ignore_patterns("__pycache__"))
        if edit:
            with open(copy / "covid19_images" / edit, "a") as handle:
                handle.write("\n# a reader fix\n")
        env = {**os.environ, "PYTHONPATH": str(copy)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    items = pd.DataFrame({"sha256": ["a" * 64], "file": ["x"], "frame": [0]})
    here = cache_key(Selection(items, ("a",), Path(".")), (8, 8), 1)
    assert key_with(None) == here
    assert key_with("imaging/decode.py") != here
    assert key_with("loaders/_pixels.py") != here


# ---------------------------------------------------------------- the file check


SHAPE = (3, 4, 5, 1)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "k.npy"
    np.save(path, np.arange(np.prod(SHAPE), dtype=np.uint8).reshape(SHAPE))
    return path


def test_complete_file_of_the_expected_shape_is_opened(good: Path) -> None:
    found = _open_valid(good, SHAPE)
    assert found is not None and found.shape == SHAPE and found.path == good
    assert found.offset + 60 == good.stat().st_size
    assert np.array_equal(np.asarray(found.array), np.arange(60, dtype=np.uint8).reshape(SHAPE))


def test_file_with_trailing_bytes_is_not_opened(good: Path) -> None:
    with open(good, "ab") as handle:
        handle.write(b"\0")
    assert _open_valid(good, SHAPE) is None


def test_truncated_missing_or_garbage_file_is_not_opened(good: Path, tmp_path: Path) -> None:
    assert _open_valid(tmp_path / "missing.npy", SHAPE) is None
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not an array")
    assert _open_valid(garbage, SHAPE) is None
    with open(good, "r+b") as handle:
        handle.truncate(good.stat().st_size - 1)
    assert _open_valid(good, SHAPE) is None


def test_other_shape_or_dtype_is_not_opened(good: Path, tmp_path: Path) -> None:
    assert _open_valid(good, (3, 4, 5, 3)) is None
    assert _open_valid(good, (2, 4, 5, 1)) is None
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros(SHAPE, dtype=np.uint16))
    assert _open_valid(wide, SHAPE) is None
