"""Exact near-duplicate search over 256-bit perceptual hashes, and its index kept between syncs.

Search: every pair within ``max_distance`` bits, measured exactly. For +-1 bit vectors the dot
product is ``bits - 2 * distance``, so one float32 matrix product per tile measures a block of
pairs (BLAS, not Python loops), and only the pairs that pass leave the tile as numpy arrays.

Why not multi-index hashing: at radius 48 of 256 bits (19 %) the pigeonhole chunks must be
searched with 2-3 flipped bits each, which leaves about 3 % of all pairs as candidates on
well-spread hashes, and gathering candidates costs more per pair than the matrix product does.
What makes a sync cheap instead is the index: the candidate edges already found are kept (keyed
by file content), so a sync that adds ``k`` pictures searches ``k`` hashes against the ``N``
indexed ones, ``O(k N)``, and a sync that adds none searches nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from covid19_images.imaging.fingerprints import PHASH_BITS, PHASH_HEX

#: Bump when the meaning of a stored edge changes; an index of another version is ignored.
INDEX_VERSION = 1
EDGE_COLUMNS = ("a", "b", "distance", "mse", "status")  # status: near, rejected, unconfirmed


def hash_bytes(hashes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(``positions`` of the usable hashes, their bytes as an ``(n, 32)`` uint8 array)."""
    series = pd.Series(hashes, dtype=object)
    usable = series.map(lambda h: isinstance(h, str) and len(h) == PHASH_HEX).to_numpy(dtype=bool)
    positions = np.flatnonzero(usable)
    raw = bytes.fromhex("".join(series.to_numpy()[usable].tolist()))
    return positions, np.frombuffer(raw, dtype=np.uint8).reshape(len(positions), PHASH_BITS // 8)


def _floats(tile: np.ndarray) -> np.ndarray:
    """Packed hash bytes as a +-1 float32 matrix (one row of 256 values per hash)."""
    return np.where(np.unpackbits(tile, axis=1), np.float32(1), np.float32(-1))


def pairs_within(
    bits: np.ndarray,
    max_distance: int,
    queries: np.ndarray | None = None,
    *,
    rows_per_tile: int = 1024,  # pragma: no mutate - a tile size: the same pairs, in other blocks
    cols_per_tile: int = 8192,  # pragma: no mutate - a tile size: the same pairs, in other blocks
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, distance)`` arrays, ``a < b``, of rows of ``bits`` within ``max_distance`` bits.

    ``bits`` is the packed ``(n, 32)`` uint8 array of :func:`hash_bytes`, unpacked one tile at a
    time (32 bytes per hash in memory instead of 1 kB: a million hashes fit in 32 MB). With
    ``queries`` (row numbers into ``bits``), only pairs with at least one queried row are
    searched: ``len(queries) x len(bits)`` products instead of all pairs. Memory stays near the
    size of one tile (32 MB).
    """
    n = len(bits)
    # dot products of +-1 vectors are exact integers in float32 (at most 256 in magnitude)
    least = PHASH_BITS - 2 * max_distance
    rows = np.arange(n) if queries is None else np.unique(np.asarray(queries, dtype=np.int64))
    is_query = np.zeros(n, dtype=bool)
    is_query[rows] = True
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    found_d: list[np.ndarray] = []
    for start in range(0, len(rows), rows_per_tile):
        block_rows = rows[start : start + rows_per_tile]
        block = _floats(bits[block_rows])
        first_col = int(block_rows[0]) if queries is None else 0
        for col in range(first_col, n, cols_per_tile):
            dots = block @ _floats(bits[col : col + cols_per_tile]).T
            ii, jj = np.nonzero(dots >= least)
            if not len(ii):
                continue
            a = block_rows[ii]
            b = jj + col
            # each unordered pair once: a < b, and a pair of two queried rows from its smaller side
            keep = (a < b) | ~is_query[b]
            a, b, d = a[keep], b[keep], dots[ii[keep], jj[keep]]
            found_a.append(np.minimum(a, b))
            found_b.append(np.maximum(a, b))
            found_d.append(np.rint((PHASH_BITS - d) / 2).astype(np.int64))
    return _sorted_pairs(found_a, found_b, found_d)


#: Up to this many queried hashes, pairs are measured by XOR and popcount of packed words;
#: above it, by the matrix products of :func:`pairs_within`.
FEW_QUERIES = 256


_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint16)


def packed_bits(hashes: Sequence[str]) -> np.ndarray:
    """256-bit hex hashes (all usable) as an ``(n, 32)`` uint8 array, for XOR and popcount."""
    raw = bytes.fromhex("".join(hashes))
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(hashes), PHASH_BITS // 8)


def pairs_of_few(
    words: np.ndarray, max_distance: int, queries: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pairs_within` with ``queries`` for a few queried rows: one XOR-popcount pass per query."""
    queries = np.unique(np.asarray(queries, dtype=np.int64))
    is_query = np.zeros(len(words), dtype=bool)
    is_query[queries] = True
    found_a, found_b, found_d = [], [], []
    for q in queries.tolist():
        distance = _POPCOUNT[words ^ words[q]].sum(axis=1)
        hits = np.flatnonzero(distance <= max_distance)
        hits = hits[(hits > q) | ~is_query[hits]]  # q itself is a query: never its own pair
        found_a.append(np.minimum(hits, q))
        found_b.append(np.maximum(hits, q))
        found_d.append(distance[hits].astype(np.int64))
    return _sorted_pairs(found_a, found_b, found_d)


@dataclass
class NearIndex:
    """Fingerprints already searched (``key -> phash``) and every candidate edge between them.

    Keys are file contents (``sha256``), so an edge stays true whatever row, source or path
    the file has; ``edges`` holds keys ``a``/``b``, the distance, the pixel check's ``mse``
    (NaN when not checked) and the outcome (``near``, ``rejected`` or ``unconfirmed``).
    """

    fingerprints: pd.Series  # index: key, values: phash
    edges: pd.DataFrame
    settings: dict
    #: why a stored index was not reused although its settings matched ("" when it was, or none existed)
    distrusted: str = ""

    @classmethod
    def empty(cls, settings: dict) -> NearIndex:
        return cls(pd.Series(dtype=object), pd.DataFrame(columns=list(EDGE_COLUMNS)), settings)

    @classmethod
    def load(cls, directory: Path, settings: dict) -> NearIndex | None:
        """The stored index, or None when absent, unreadable or made with other settings."""
        try:
            meta = json.loads((directory / "near-index.json").read_bytes())  # JSON is UTF-8
            if meta != {**settings, "version": INDEX_VERSION}:
                return None
            keys = pd.read_parquet(directory / "near-fingerprints.parquet")
            edges = pd.read_parquet(directory / "near-edges.parquet")
        except (OSError, ValueError, KeyError):
            return None
        return cls(pd.Series(keys["phash"].to_numpy(), index=keys["key"].to_numpy()), edges, settings)

    def save(self, directory: Path) -> None:
        """Write the index (plain files in a private cache folder; a torn write is just ignored next time)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "near-index.json").unlink(missing_ok=True)
        frame = pd.DataFrame({"key": self.fingerprints.index.astype(str), "phash": self.fingerprints.to_numpy()})
        frame.to_parquet(directory / "near-fingerprints.parquet", index=False)
        self.edges.reset_index(drop=True).to_parquet(directory / "near-edges.parquet", index=False)
        meta = {**self.settings, "version": INDEX_VERSION}
        (directory / "near-index.json").write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")


def _sorted_pairs(
    found_a: list[np.ndarray], found_b: list[np.ndarray], found_d: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs gathered tile by tile as three int64 arrays, ordered by (a, b)."""
    if not found_a:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    a, b, d = np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_d)
    order = np.lexsort((b, a))
    return a[order], b[order], d[order]


_HEX = frozenset("0123456789abcdef")


def stored_index_problem(index: NearIndex, accept: int, candidate: int, confirm_mse: float) -> str | None:
    """Why a stored index disagrees with what it summarises, or None when it can be reused.

    The index is an input like any other (a file in the git folder that anyone can edit or
    damage): every fingerprint must be a 256-bit hash that its key starts with, every edge
    must join two fingerprints of the index at the distance their hashes really have (within
    the search radius), once, and its outcome must be the one the settings give for that
    distance and pixel check. What cannot be re-derived cheaply (a pair missing from the
    index) is ``verify``'s job, which searches afresh.
    """
    keys, phashes = index.fingerprints.index, index.fingerprints.to_numpy()
    for key, value in zip(keys, phashes, strict=True):
        if not (isinstance(value, str) and len(value) == PHASH_HEX and _HEX.issuperset(value)):
            return f"fingerprint {str(key)[:16]}… is not a {PHASH_BITS}-bit hash"
        if not (isinstance(key, str) and key.startswith(value)):
            return f"fingerprint key {str(key)[:16]}… does not start with its hash"
    if not keys.is_unique:
        return "a fingerprint is listed twice"
    edges = index.edges
    if list(edges.columns) != list(EDGE_COLUMNS):
        return f"edge columns {list(edges.columns)} are not {list(EDGE_COLUMNS)}"
    if edges.empty:
        return None
    known = pd.Series(phashes, index=keys)
    if not (edges["a"].isin(keys).all() and edges["b"].isin(keys).all()):
        return "an edge names a fingerprint the index does not hold"
    pairs = pd.DataFrame({"low": edges[["a", "b"]].min(axis=1), "high": edges[["a", "b"]].max(axis=1)})
    if (pairs["low"] == pairs["high"]).any() or pairs.duplicated().any():
        return "an edge joins a fingerprint to itself, or is listed twice"
    words_a = packed_bits(known.reindex(edges["a"]).tolist())
    words_b = packed_bits(known.reindex(edges["b"]).tolist())
    real = _POPCOUNT[words_a ^ words_b].sum(axis=1).astype(np.int64)
    stated = pd.to_numeric(edges["distance"], errors="coerce").to_numpy(dtype=float)
    if not np.array_equal(real.astype(float), stated) or (real > max(accept, candidate)).any():
        return "an edge's distance is not the distance between its hashes"
    status = edges["status"].astype(object).to_numpy()
    mse = pd.to_numeric(edges["mse"], errors="coerce").to_numpy(dtype=float)
    close = real <= accept
    checked = ~np.isnan(mse)
    expected = np.where(
        close, "near", np.where(~checked, "unconfirmed", np.where(mse <= confirm_mse, "near", "rejected"))
    )
    if not np.array_equal(status, expected.astype(object)) or (close & checked).any():
        return "an edge's outcome is not what its distance and pixel check give"
    return None
