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
from covid19_images.manifest.near_index import _not_hashes, _queried_pairs, _unprefixed, pairs_within


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
