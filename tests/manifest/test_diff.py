"""What changed between two manifests: the hash-indexed comparison, and the merge it falls back to."""

from __future__ import annotations

import pandas as pd
import pytest

from covid19_images.manifest.diff import SourceChange, diff_manifests

COLUMNS = ["image_id", "source", "path", "label", "split"]
ARROW_TEXT = pd.StringDtype("pyarrow", na_value=float("nan"))


def _frame(rows: list[tuple], dtype=object) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS).astype(dtype)


def _as_tuples(changes: dict[str, SourceChange]) -> dict[str, tuple]:
    return {name: (c.added, c.removed, c.relabelled, c.moved) for name, c in changes.items()}


OLD = [
    ("i1", "nih", "nih/a.png", "normal", "train"),
    ("i2", "nih", "nih/b.png", "normal", "test"),
    ("i3", "ieee", "ieee/c.jpg", "covid-19", "val"),
    ("i4", "ieee", "ieee/d.jpg", "pneumonia", "train"),
    ("i5", "pocus", "pocus/e.mp4", "covid-19", "train"),
]
NEW = [
    ("i2", "nih", "nih/b.png", "pneumonia", "test"),  # relabelled
    ("i1", "nih", "nih/a.png", "normal", "train"),  # same, in another place
    ("i3", "ieee", "ieee/c.jpg", "covid-19", "train"),  # split moved
    ("i6", "ieee", "ieee/a-new.jpg", "covid-19", "test"),  # added
    ("i7", "zed", "zed/z.png", "other", "val"),  # added, a new source
    ("i5", "pocus", "pocus/e.mp4", "normal", "val"),  # relabelled and moved
]
EXPECTED = {
    "ieee": (["ieee/a-new.jpg"], ["ieee/d.jpg"], [], [("ieee/c.jpg", "val", "train")]),
    "nih": ([], [], [("nih/b.png", "normal", "pneumonia")], []),
    "pocus": ([], [], [("pocus/e.mp4", "covid-19", "normal")], [("pocus/e.mp4", "train", "val")]),
    "zed": (["zed/z.png"], [], [], []),
}


@pytest.mark.parametrize("old_dtype", [object, ARROW_TEXT])
@pytest.mark.parametrize("new_dtype", [object, ARROW_TEXT])
def test_added_removed_relabelled_and_moved_per_source_whatever_the_string_type(old_dtype, new_dtype) -> None:
    changes = diff_manifests(_frame(OLD, old_dtype), _frame(NEW, new_dtype))
    assert _as_tuples(changes) == EXPECTED
    assert list(changes) == sorted(EXPECTED)


def test_the_first_manifest_adds_everything_and_an_equal_one_changes_nothing() -> None:
    first = diff_manifests(None, _frame(OLD))
    assert _as_tuples(first) == {
        "ieee": (["ieee/c.jpg", "ieee/d.jpg"], [], [], []),
        "nih": (["nih/a.png", "nih/b.png"], [], [], []),
        "pocus": (["pocus/e.mp4"], [], [], []),
    }
    assert diff_manifests(_frame(OLD, ARROW_TEXT), _frame(OLD[::-1])) == {}
    assert diff_manifests(_frame(OLD), _frame([])) == {
        name: SourceChange(name, removed=removed)
        for name, removed in (
            ("ieee", ["ieee/c.jpg", "ieee/d.jpg"]),
            ("nih", ["nih/a.png", "nih/b.png"]),
            ("pocus", ["pocus/e.mp4"]),
        )
    }


def test_repeated_ids_are_matched_by_the_merge_every_pairing_counted() -> None:
    # not a manifest sync writes (ids are unique), but a frame a caller may pass
    old = _frame([("x", "s", "s/1.png", "normal", "train"), ("x", "s", "s/2.png", "covid-19", "train")])
    new = _frame([("x", "s", "s/3.png", "pneumonia", "train")])
    assert _as_tuples(diff_manifests(old, new)) == {
        "s": ([], [], [("s/3.png", "covid-19", "pneumonia"), ("s/3.png", "normal", "pneumonia")], [])
    }


def test_cells_that_are_not_text_compare_as_their_text() -> None:
    old = pd.DataFrame(
        {"image_id": ["a", "b"], "source": "s", "path": ["s/a.png", "s/b.png"], "label": [3, 4], "split": "train"}
    )
    new = _frame([("a", "s", "s/a.png", "3", "train"), ("b", "s", "s/b.png", "5", "val")])
    assert _as_tuples(diff_manifests(old, new)) == {
        "s": ([], [], [("s/b.png", "4", "5")], [("s/b.png", "train", "val")])
    }


def test_a_missing_cell_is_not_the_text_nan() -> None:
    old = pd.DataFrame({"image_id": ["a"], "source": "s", "path": ["s/a.png"], "label": [None], "split": "train"})
    new = _frame([("a", "s", "s/a.png", "nan", "train")])
    [(path, before, after)] = diff_manifests(old, new)["s"].relabelled
    assert (path, after) == ("s/a.png", "nan") and pd.isna(before)
