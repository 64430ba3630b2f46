"""The whole-manifest stages of a build take shortcuts so that a one-image change costs the change;
each shortcut must answer exactly as the plain computation over every row does.

``test_incremental.py`` and ``tests/sync`` prove the incremental build equals a rebuild on random
upstream changes; these tests aim at each shortcut's own edge: rows of a source that are not one
slice, a previous manifest the build cannot trust, and so on.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from covid19_images.manifest.duplicates import NEAR_ACCEPT, find_duplicates, hamming
from covid19_images.manifest.near_index import _queried_pairs, pairs_within
from covid19_images.manifest.near_index_check import _not_hashes, _unprefixed


def _first_not_hash(values: list) -> int | None:
    """The definition, one value at a time."""
    for position, value in enumerate(values):
        if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
            return position
    return None


def test_the_stored_index_check_of_fingerprints_finds_what_a_test_per_value_finds() -> None:
    """Lengths and digits are checked in C over the values as Arrow text; NULs, newlines, longer, shorter,
    non-ASCII, unencodable and non-string values must still be caught."""
    rng = random.Random(5)
    good = ["".join(rng.choice("0123456789abcdef") for _ in range(64)) for _ in range(40)]
    hostile = [
        good[0] + "\x00",
        good[0][:63] + "\x00",
        good[0][:62] + "\x00\x00",
        good[0] + "0",
        good[0][:63],
        good[0][:63] + "é",
        good[0][:63] + "G",
        good[0].upper(),
        None,
        12,
        "",
        good[0][:63] + "\n",  # a pattern whose ``$`` matched before a final newline would pass these
        good[0] + "\n",
        good[0][:63] + "\ud800",  # a lone surrogate: no UTF-8 for it, so no Arrow text either
        float("nan"),
        good[0].encode("ascii"),  # the right bytes, but not text
    ]
    for bad in hostile:
        for at in (0, 17, 39):
            values = list(good)
            values[at] = bad
            array = np.array(values, dtype=object)
            assert _not_hashes(array) == _first_not_hash(values) == at, repr(bad)
            keys = np.array([v + "k" if isinstance(v, str) else v for v in good], dtype=object)
            keys[at] = bad
            expected = [i for i, key in enumerate(keys) if not (isinstance(key, str) and key[:64] == good[i])]
            assert _unprefixed(keys, np.array(good, dtype=object)).tolist() == expected, repr(bad)
    assert _not_hashes(np.array(good, dtype=object)) is None
    assert not len(_unprefixed(np.array([v + "k" for v in good], dtype=object), np.array(good, dtype=object)))


def _groups_by_definition(frame: pd.DataFrame, accept: int) -> list[str]:
    """Duplicate groups from every pair, one at a time: same file, same pixels (not blank), or phashes
    within ``accept`` bits; each group named by its smallest image id, a row alone by ""."""
    parent = list(range(len(frame)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    rows = frame.to_dict("records")
    for i, a in enumerate(rows):
        for j in range(i):
            b = rows[j]
            same_file = a["sha256"] == b["sha256"] != ""
            same_pixels = a["pixel_sha256"] == b["pixel_sha256"] != "" and a["phash"] != "" and b["phash"] != ""
            near = len(a["phash"]) == len(b["phash"]) == 64 and hamming(a["phash"], b["phash"]) <= accept
            if same_file or same_pixels or near:
                parent[root(i)] = root(j)
    members: dict[int, list[str]] = {}
    for i, row in enumerate(rows):
        members.setdefault(root(i), []).append(row["image_id"])
    return [min(members[root(i)]) if len(members[root(i)]) > 1 else "" for i in range(len(rows))]


def test_duplicate_groups_and_search_nodes_are_what_every_pair_gives() -> None:
    """Group names come from the rows in groups only, and each perceptual hash's search node from
    the rows sharing it only; on shuffled rows with many copies of one hash, both must be what the
    definition over every pair gives (the node's file: the smallest sha256 of the rows with that hash)."""
    rng = random.Random(3)
    hexes = ["".join(rng.choice("0123456789abcdef") for _ in range(64)) for _ in range(30)]
    rows = []
    for i in range(160):
        phash = rng.choice([*hexes[:6], *hexes, ""])  # the first hashes are shared by many rows
        sha = rng.choice([f"f{i:03d}", f"f{i:03d}", f"shared{rng.randrange(5)}"])
        pixel = rng.choice(["", "", f"p{rng.randrange(8)}"])
        rows.append(
            {"image_id": f"{rng.randrange(10**6):06d}{i}", "sha256": sha, "pixel_sha256": pixel, "phash": phash}
        )
    frame = pd.DataFrame(rows).sample(frac=1, random_state=1).reset_index(drop=True)
    found = find_duplicates(frame, accept=NEAR_ACCEPT, candidate=NEAR_ACCEPT)
    assert list(found.groups) == _groups_by_definition(frame, NEAR_ACCEPT)
    smallest = frame[frame["phash"] != ""].groupby("phash")["sha256"].min()
    assert sorted(found.index.fingerprints.index) == sorted(p + s for p, s in smallest.items())


def test_a_few_queried_hashes_are_measured_without_faiss_and_give_the_same_pairs() -> None:
    """A sync that adds a few pictures measures them in numpy (faiss is not even imported); the pairs,
    their order and distances are faiss's, also across column tiles and for two queried rows."""
    rng = np.random.default_rng(4)
    bits = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    for i in range(0, 3000, 3):  # near copies at every distance around the radius
        flip = rng.choice(256, size=int(rng.integers(0, 60)), replace=False)
        copy = np.unpackbits(bits[i])
        copy[flip] ^= 1
        bits[i + 1] = np.packbits(copy)
    bits[7] = bits[1]  # identical hashes, one of them queried
    for queries in ([0], [1, 0, 7, 7], list(range(0, 3000, 97)), []):
        fast = pairs_within(bits, 48, np.array(queries, dtype=np.int64))
        slow = pairs_within(bits, 48, np.array(queries, dtype=np.int64), numpy_pairs=0, cols_per_tile=1000)
        assert all(np.array_equal(x, y) for x, y in zip(fast, slow, strict=True)), queries
        assert len(fast[0]) or not queries
    tiled, queries = np.tile(bits, (30, 1)), np.array([5, 70000])  # 90,000 rows: two column tiles
    fast = _queried_pairs(tiled, queries, 48)
    slow = pairs_within(tiled, 48, queries, numpy_pairs=0)
    assert all(np.array_equal(x, y) for x, y in zip(fast, slow, strict=True)) and len(fast[0]) > 60


def _text_frame(rows: list[tuple[str, str]]) -> pd.DataFrame:
    from covid19_images.manifest.io import text_dtype

    frame = pd.DataFrame(rows, columns=["source", "path"]).astype(text_dtype())
    frame["n"] = range(len(frame))  # which row is which, for a stable sort's ties
    return frame


def test_the_manifest_order_check_agrees_with_the_sort_on_hostile_text() -> None:
    """Rows found in order are returned as they are; whatever the check says, the answer is the
    stable sort's: empty text, NUL, case, non-ASCII, combining marks, characters beyond the BMP
    (whose UTF-16 order differs from their code points'), ties, and one pair swapped anywhere."""
    from covid19_images.manifest.io import in_manifest_order

    rng = random.Random(11)
    alphabet = ["", "a", "A", "b", "\x00", "é", "e\u0301", "\uffff", "\U0001f600", "z/1", "z/10", "z/2", " "]
    shortcut = 0
    for trial in range(300):
        rows = [
            (rng.choice(alphabet[:5]), rng.choice(alphabet) + rng.choice(alphabet)) for _ in range(rng.randint(0, 12))
        ]
        rows.sort()
        if trial % 3 and len(rows) > 1:
            i, j = rng.sample(range(len(rows)), 2)
            rows[i], rows[j] = rows[j], rows[i]
        frame = _text_frame(rows)
        expected = frame.sort_values(["source", "path"], kind="mergesort")
        got = in_manifest_order(frame)
        pd.testing.assert_frame_equal(got, expected)
        if expected.index.equals(frame.index):
            assert got is frame, rows  # in order: no sort, not even a copy
            shortcut += 1
    assert shortcut > 100


def test_the_manifest_order_check_leaves_missing_values_and_other_types_to_the_sort() -> None:
    from covid19_images.manifest.io import in_manifest_order

    for at, column in ((0, "path"), (1, "path"), (0, "source"), (2, "source")):
        missing = _text_frame([("a", "x"), ("a", "y"), ("a", "z"), ("b", "a")])
        missing.loc[at, column] = None  # the sort puts missing values last; compared, they give no answer
        expected = missing.sort_values(["source", "path"], kind="mergesort")
        pd.testing.assert_frame_equal(in_manifest_order(missing), expected)
    plain = pd.DataFrame({"source": ["b", "a"], "path": ["x", "y"]})  # Python strings, not Arrow text
    assert in_manifest_order(plain)["source"].tolist() == ["a", "b"]


def test_carried_rows_taken_as_one_slice_are_the_rows_taken_one_by_one() -> None:
    """A run of consecutive positions is one zero-copy slice; any other list is gathered. Both give
    the rows at those positions, at the new commit, and leave the previous manifest untouched."""
    from covid19_images.core.schema import ROW_COLUMNS
    from covid19_images.manifest.io import text_dtype
    from covid19_images.manifest.row_carry import RowCarry

    previous = pd.DataFrame({c: [f"{c}{i}" for i in range(8)] for c in ROW_COLUMNS}).astype(text_dtype())
    before = previous.copy()
    carry = RowCarry("s", previous, set(), set(), {}, set())
    for positions in (
        [],
        [3],
        [0, 1, 2, 3, 4, 5, 6, 7],
        [2, 3, 4],
        [0, 2, 1, 3],
        [1, 3, 2],
        [4, 3],
        [5, 5, 6],
        [0, 1, 3],
    ):
        rows = carry.rows(positions, "new")
        assert rows["path"].tolist() == [f"path{p}" for p in positions], positions
        assert rows["image_id"].tolist() == [f"image_id{p}" for p in positions]
        assert rows["source_commit"].tolist() == ["new"] * len(positions)
        assert list(rows.columns) == list(ROW_COLUMNS)
        assert rows.index.tolist() == list(range(len(positions)))
    pd.testing.assert_frame_equal(previous, before)
