"""Exact near-duplicate search over 256-bit perceptual hashes, and its index kept between syncs.

Search: every pair within ``max_distance`` bits, measured exactly, by faiss's binary flat
index (``IndexBinaryFlat.range_search``: XOR and popcount over packed codes, in C++), tile by
tile so that a million hashes take 32 MB and each pair is measured once. A prefix of each hash
goes through faiss and the few pairs close on it are measured whole (see :data:`PREFIX_BYTES`).

Why not an index that prunes (multi-index hashing, metric trees): at radius 48 of 256 bits
(19 %) the pigeonhole chunks must be searched with 2-3 flipped bits each, which leaves about
3 % of all pairs as candidates on well-spread hashes, and distances to any pivot lie within
128 +- 24 bits, so a triangle inequality prunes nothing; gathering candidates costs more per
pair than measuring it. What makes a sync cheap instead is the index: the candidate edges
already found are kept (keyed by file content), so a sync that adds ``k`` pictures searches
``k`` hashes against the ``N`` indexed ones, ``O(k N)``, and a sync that adds none searches
nothing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from covid19_images.imaging.fingerprints import PHASH_BITS, PHASH_HEX

#: Bump when the meaning of a stored edge changes; an index of another version is ignored.
INDEX_VERSION = 1
EDGE_COLUMNS = ("a", "b", "distance", "mse", "status")  # status: near, rejected, unconfirmed


def hash_bytes(hashes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(``positions`` of the usable hashes, their bytes as an ``(n, 32)`` uint8 array)."""
    values = np.asarray(hashes, dtype=object)
    usable = np.fromiter((isinstance(h, str) and len(h) == PHASH_HEX for h in values), dtype=bool, count=len(values))
    positions = np.flatnonzero(usable)
    raw = bytes.fromhex("".join(values[usable].tolist()))
    return positions, np.frombuffer(raw, dtype=np.uint8).reshape(len(positions), PHASH_BITS // 8)


_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint16)


def packed_bits(hashes: Sequence[str]) -> np.ndarray:
    """256-bit hex hashes (all usable) as an ``(n, 32)`` uint8 array, for XOR and popcount."""
    raw = bytes.fromhex("".join(hashes))
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(hashes), PHASH_BITS // 8)


def key_index(fingerprints: pd.Series) -> pd.Index:
    """The keys of ``fingerprints`` as an object Index: the one held when it is one already, so the hash
    table pandas builds for a lookup is built once per index, not once per question (0.03-0.1 s each
    at 200,000 keys)."""
    keys = fingerprints.index
    return keys if keys.dtype == object else pd.Index(keys.to_numpy(dtype=object), dtype=object)


def _faiss():
    """faiss, imported on first use (about 0.15 s; a sync that searches nothing never pays it)."""
    import faiss

    return faiss


def _one_faiss_thread() -> None:
    """Make faiss single-threaded in a forked child, if the parent had loaded it.

    Why: faiss searches on OpenMP threads, and GNU OpenMP's thread pool does not survive
    ``fork``. A child forked after a search (a ``multiprocessing`` pool with the ``fork`` start
    method, Linux's default before Python 3.14; a mutation tester that forks per mutant) inherits
    a pool whose threads were not copied, and its first search waits for them forever (faiss
    issue #5206; ``OMP_NUM_THREADS=1`` avoids it). On one thread the child's search never waits
    on that pool, so it runs and finishes. Registered when this module is imported, not at its
    first search, so that a search by other code before the fork is covered too.
    """
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(1)


os.register_at_fork(after_in_child=_one_faiss_thread)


#: Bytes of each hash that faiss compares first. A prefix never differs in more bits than the
#: whole hash, so a pair further apart than the radius on the first 160 bits is further apart
#: on all 256; only pairs within the radius on the prefix (about 1 in 5 million pairs of
#: well-spread hashes) are measured whole. faiss has a dedicated kernel for 20-byte codes,
#: about 20 % faster per pair than its 32-byte one (24 bytes falls back to a generic loop).
PREFIX_BYTES = 20  # pragma: no mutate - a speed choice: any prefix width gives the same pairs
#: Queried pairs up to which numpy measures them all (1 new picture against 50,000 in about 5 ms;
#: importing faiss alone takes 0.05-0.15 s).
NUMPY_PAIRS = 1 << 21  # pragma: no mutate - a speed choice: the same pairs either way


def pairs_within(
    bits: np.ndarray,
    max_distance: int,
    queries: np.ndarray | None = None,
    *,
    rows_per_tile: int = 8192,  # pragma: no mutate - a tile size: the same pairs, in other blocks
    cols_per_tile: int = 65536,  # pragma: no mutate - a tile size: the same pairs, in other blocks
    numpy_pairs: int = NUMPY_PAIRS,  # pragma: no mutate - a speed choice: the same pairs either way
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, distance)`` arrays, ``a < b``, of rows of ``bits`` within ``max_distance`` bits.

    ``bits`` is the packed ``(n, 32)`` uint8 array of :func:`hash_bytes` (32 bytes per hash: a
    million hashes fit in 32 MB). Each tile of rows is range-searched by faiss's
    ``IndexBinaryFlat`` (XOR and popcount, exact) against a tile of columns on the hashes'
    first :data:`PREFIX_BYTES`, and the pairs it returns are measured on the remaining bytes.
    Without ``queries`` each pair is measured once (columns from the tile's first row on);
    with ``queries`` (row numbers into ``bits``) only pairs with at least one queried row are
    searched: ``len(queries) x len(bits)`` instead of all pairs. At most ``numpy_pairs`` such
    pairs (a sync that adds a few pictures) are measured by numpy, without importing faiss.
    """
    n = len(bits)
    if queries is not None and len(np.unique(queries)) * n <= numpy_pairs:
        return _queried_pairs(bits, np.unique(np.asarray(queries, dtype=np.int64)), max_distance)
    faiss = _faiss()
    prefix = np.ascontiguousarray(bits[:, :PREFIX_BYTES])
    rest = bits[:, PREFIX_BYTES:]
    rows = np.arange(n) if queries is None else np.unique(np.asarray(queries, dtype=np.int64))
    is_query = np.zeros(n, dtype=bool)
    is_query[rows] = True
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    found_d: list[np.ndarray] = []
    for start in range(0, len(rows), rows_per_tile):
        block_rows = rows[start : start + rows_per_tile]
        block = prefix[block_rows]
        first_col = int(block_rows[0]) if queries is None else 0
        for col in range(first_col, n, cols_per_tile):
            index = faiss.IndexBinaryFlat(PREFIX_BYTES * 8)
            index.add(prefix[col : col + cols_per_tile])
            # faiss keeps distances strictly below the radius it is given
            limits, distance, found = index.range_search(block, max_distance + 1)
            if not len(found):
                continue
            a = block_rows[np.repeat(np.arange(len(block_rows)), np.diff(limits).astype(np.int64))]
            b = found.astype(np.int64) + col
            # each unordered pair once: a < b, and a pair of two queried rows from its smaller side
            keep = (a < b) | ~is_query[b]
            a, b = a[keep], b[keep]
            d = distance[keep].astype(np.int64) + _POPCOUNT[rest[a] ^ rest[b]].sum(axis=1, dtype=np.int64)
            within = d <= max_distance
            found_a.append(np.minimum(a[within], b[within]))
            found_b.append(np.maximum(a[within], b[within]))
            found_d.append(d[within])
    return _sorted_pairs(found_a, found_b, found_d)


def _queried_pairs(bits: np.ndarray, rows: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pairs_within` for a few queried ``rows``, XOR and popcount in numpy: the same pairs."""
    n = len(bits)
    is_query = np.zeros(n, dtype=bool)
    is_query[rows] = True
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    found_d: list[np.ndarray] = []
    width = 1 << 16  # tiles of about 65,536 pairs: 2 MB of bytes whatever the index's size
    step = max(1, width // max(min(n, width), 1))
    for start in range(0, len(rows), step):
        block = rows[start : start + step]
        for col in range(0, n, width):
            columns = bits[col : col + width]
            distance = _POPCOUNT[bits[block][:, None, :] ^ columns[None, :, :]].sum(axis=2, dtype=np.int64)
            at, found = np.nonzero(distance <= max_distance)
            a, b = block[at], found + col
            keep = (a < b) | ~is_query[b]  # each unordered pair once; two queried rows from the smaller side
            found_a.append(np.minimum(a[keep], b[keep]))
            found_b.append(np.maximum(a[keep], b[keep]))
            found_d.append(distance[at[keep], found[keep]])
    return _sorted_pairs(found_a, found_b, found_d)


#: The stored index's files: its settings (written last: a torn save is ignored), the base tables,
#: and the delta tables written against that base (see :meth:`NearIndex.save`).
META_FILE = "near-index.json"
FINGERPRINTS_FILE = "near-fingerprints.parquet"
EDGES_FILE = "near-edges.parquet"
DELTA_FINGERPRINTS_FILE = "near-delta-fingerprints.parquet"
DELTA_EDGES_FILE = "near-delta-edges.parquet"
#: A delta is written while it holds at most this share of the base's fingerprints (or ``DELTA_MIN`` rows).
DELTA_SHARE = 8
DELTA_MIN = 1024
#: How the tables are written: plain and uncompressed. Their keys and hashes are random hex, which
#: neither a dictionary nor Snappy shrinks (36.8 vs 40.1 MB at 200,000 fingerprints) but which
#: both slow down: reading the fingerprints took 0.114 s with them and 0.018 s without, writing
#: 0.112 and 0.034 s (docs/benchmarks.md, round twelve).
PARQUET_OPTIONS = {"index": False, "compression": "none", "use_dictionary": False}


@dataclass
class StoredBase:
    """The base tables on disk that a delta is written against: where, their keys and their edges."""

    directory: Path
    keys: pd.Index
    edges: pd.DataFrame


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
    #: the base stored on disk that this index grew from (a delta of it is saved), None to save in full
    base: StoredBase | None = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(cls, settings: dict) -> NearIndex:
        return cls(pd.Series(dtype=object), pd.DataFrame(columns=list(EDGE_COLUMNS)), settings)

    @classmethod
    def load(cls, directory: Path, settings: dict) -> NearIndex | None:
        """The stored index (its base and, when the settings file says so, its delta), or None when
        absent, unreadable or made with other settings."""
        try:
            meta = json.loads((directory / META_FILE).read_bytes())  # JSON is UTF-8
            delta = meta.pop("delta", False) if isinstance(meta, dict) else False
            if meta != {**settings, "version": INDEX_VERSION} or not isinstance(delta, bool):
                return None
            keys = pd.read_parquet(directory / FINGERPRINTS_FILE)
            edges = pd.read_parquet(directory / EDGES_FILE)
            base = StoredBase(directory, pd.Index(keys["key"].to_numpy(dtype=object), dtype=object), edges)
            phashes = keys["phash"].to_numpy(dtype=object)
            if delta:
                changed = pd.read_parquet(directory / DELTA_FINGERPRINTS_FILE)
                added_edges = pd.read_parquet(directory / DELTA_EDGES_FILE)
                removed = changed["removed"].to_numpy(dtype=bool)
                added = changed[~removed]
                kept = ~base.keys.isin(changed.loc[removed, "key"].to_numpy(dtype=object))
                key_values = np.concatenate([base.keys.to_numpy()[kept], added["key"].to_numpy(dtype=object)])
                phashes = np.concatenate([phashes[kept], added["phash"].to_numpy(dtype=object)])
                stored_keys = pd.Index(key_values, dtype=object)
                edges = pd.concat([_between(edges, stored_keys), added_edges], ignore_index=True)
            else:
                stored_keys = base.keys
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # object values and keys, as a search makes them: pandas would turn them into Arrow text
        # that every reader turns back (near_index_check, duplicates._search)
        return cls(pd.Series(phashes, index=stored_keys, dtype=object), edges, settings, base=base)

    def save(self, directory: Path) -> None:
        """Write the index (plain files in a private cache folder; a torn write is just ignored next time).

        An index grown from the stored base by a few fingerprints is written as a delta of it: the
        base's removed keys, the added fingerprints and the added edges, so a sync that adds one
        picture to 200,000 writes one row instead of 200,000 (0.19-0.21 s -> 0.14 s, most of it
        finding the changed keys). Once the delta holds more than an eighth of the base, or the
        edges no longer start with the base's kept ones, the whole index is written as the new base.
        """
        directory.mkdir(parents=True, exist_ok=True)
        (directory / META_FILE).unlink(missing_ok=True)
        delta = self._delta(directory)
        if delta is not None:
            changed, added_edges = delta
            changed.to_parquet(directory / DELTA_FINGERPRINTS_FILE, **PARQUET_OPTIONS)
            added_edges.to_parquet(directory / DELTA_EDGES_FILE, **PARQUET_OPTIONS)
        else:
            frame = pd.DataFrame({"key": self.fingerprints.index.astype(str), "phash": self.fingerprints.to_numpy()})
            frame.to_parquet(directory / FINGERPRINTS_FILE, **PARQUET_OPTIONS)
            edges = self.edges.reset_index(drop=True)
            edges.to_parquet(directory / EDGES_FILE, **PARQUET_OPTIONS)
            for name in (DELTA_FINGERPRINTS_FILE, DELTA_EDGES_FILE):
                (directory / name).unlink(missing_ok=True)
            self.base = StoredBase(directory, key_index(self.fingerprints), edges)
        meta = {**self.settings, "version": INDEX_VERSION, "delta": delta is not None}
        (directory / META_FILE).write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")

    def _delta(self, directory: Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """(removed and added fingerprints, added edges) against the base stored in ``directory``, or
        None to save in full."""
        base = self.base
        keys = key_index(self.fingerprints)
        if base is None or base.directory != directory or not keys.is_unique:
            return None
        found = keys.get_indexer(base.keys)  # one hash table of the keys (unique: one per searched hash)
        removed = base.keys[found < 0]
        is_added = np.ones(len(keys), dtype=bool)
        is_added[found[found >= 0]] = False
        kept_edges = _between(base.edges, keys)
        if len(self.edges) < len(kept_edges) or not _same_edges(self.edges.iloc[: len(kept_edges)], kept_edges):
            return None  # edges in another order than "the base's kept ones, then new ones"
        added_edges = self.edges.iloc[len(kept_edges) :].reset_index(drop=True)
        size = len(removed) + int(is_added.sum()) + len(added_edges)
        if size > max(DELTA_MIN, len(base.keys) // DELTA_SHARE):
            return None
        changed = pd.DataFrame(
            {
                "key": np.concatenate([removed.to_numpy(dtype=object), keys[is_added].to_numpy(dtype=object)]),
                "phash": np.concatenate(
                    [np.full(len(removed), "", dtype=object), self.fingerprints.to_numpy(dtype=object)[is_added]]
                ),
                "removed": np.arange(len(removed) + int(is_added.sum())) < len(removed),
            }
        )
        return changed.astype({"key": str, "phash": str}), added_edges


def _between(edges: pd.DataFrame, keys: pd.Index) -> pd.DataFrame:
    """The edges both of whose ends are among ``keys``, in their order."""
    if edges.empty:
        return edges
    both = keys.get_indexer(edges["a"].to_numpy(dtype=object)) >= 0
    both &= keys.get_indexer(edges["b"].to_numpy(dtype=object)) >= 0
    return edges[both]


def _same_edges(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    """Whether two edge tables hold the same rows in the same order (NaN ``mse`` equal to NaN)."""
    if len(left) != len(right):
        return False
    for column in EDGE_COLUMNS:
        x, y = left[column].to_numpy(), right[column].to_numpy()
        if column in ("distance", "mse"):
            x = pd.to_numeric(pd.Series(x), errors="coerce").to_numpy(dtype=float)
            y = pd.to_numeric(pd.Series(y), errors="coerce").to_numpy(dtype=float)
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not np.array_equal(x.astype(object), y.astype(object)):
            return False
    return True


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
