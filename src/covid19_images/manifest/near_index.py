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


def _faiss():
    """faiss, imported on first use (about 0.15 s; a sync that searches nothing never pays it)."""
    import faiss

    return faiss


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


#: a whole value that is the lowercase hex of a 256-bit hash (RE2: ``$`` is the end of the text)
_HASH_PATTERN = f"^[0-9a-f]{{{PHASH_HEX}}}$"


def _all_strings(values: np.ndarray) -> bool:
    return pd.api.types.infer_dtype(values, skipna=False) in ("string", "empty")


def _arrow_text(values: np.ndarray):
    """``values`` (all ``str``) as one pyarrow string array, or None when one cannot be encoded (a lone surrogate)."""
    import pyarrow as pa

    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowException, UnicodeError):
        return None


def _not_hashes(values: np.ndarray) -> int | None:
    """Position of the first value that is not a lowercase hex string of a 256-bit hash, or None.

    One regular-expression pass in C over the values as Arrow text (0.03 s for 200,000 hashes; the
    fixed-width NumPy strings used before cost 0.25 s on a first call, most of it faulting in 50 MB
    of code points). Values that are not all strings, or that
    cannot be encoded, are tested one by one.
    """
    if not len(values):
        return None
    text = _arrow_text(values) if _all_strings(values) else None
    if text is None:
        return next((i for i, v in enumerate(values) if not _is_hash(v)), None)
    import pyarrow.compute as pc

    matches = pc.match_substring_regex(text, _HASH_PATTERN).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(~matches.astype(bool))
    return int(rows[0]) if len(rows) else None


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == PHASH_HEX and all(c in "0123456789abcdef" for c in value)


def _unprefixed(keys: np.ndarray, phashes: np.ndarray) -> np.ndarray:
    """Positions of the keys that do not start with their hash (``phashes`` are checked hashes)."""
    text = _arrow_text(keys) if _all_strings(keys) else None
    if text is not None:  # each key cut to the hash's width and compared, in C
        import pyarrow.compute as pc

        starts = pc.utf8_slice_codeunits(text, 0, PHASH_HEX)
        same = pc.equal(starts, _arrow_text(phashes)).to_numpy(zero_copy_only=False)
        return np.flatnonzero(~same.astype(bool))
    starts = np.array([key[:PHASH_HEX] if isinstance(key, str) else None for key in keys], dtype=object)
    return np.flatnonzero(starts != phashes)


def stored_index_problem(index: NearIndex, accept: int, candidate: int, confirm_mse: float) -> str | None:
    """Why a stored index disagrees with what it summarises, or None when it can be reused.

    The index is an input like any other (a file in the git folder that anyone can edit or
    damage): every fingerprint must be a 256-bit hash that its key starts with, every edge
    must join two fingerprints of the index at the distance their hashes really have (within
    the search radius), once, and its outcome must be the one the settings give for that
    distance and pixel check. What cannot be re-derived cheaply (a pair missing from the
    index) is ``verify``'s job, which searches afresh.
    """
    keys = pd.Index(index.fingerprints.index.to_numpy(dtype=object), dtype=object)
    phashes = index.fingerprints.to_numpy(dtype=object)
    bad = _not_hashes(phashes)
    if bad is not None:
        return f"fingerprint {str(keys[bad])[:16]}… is not a {PHASH_BITS}-bit hash"
    wrong = _unprefixed(keys.to_numpy(dtype=object), phashes)
    if len(wrong):
        return f"fingerprint key {str(keys[wrong[0]])[:16]}… does not start with its hash"
    if not keys.is_unique:
        return "a fingerprint is listed twice"
    edges = index.edges
    if list(edges.columns) != list(EDGE_COLUMNS):
        return f"edge columns {list(edges.columns)} are not {list(EDGE_COLUMNS)}"
    if edges.empty:
        return None
    ends = [keys.get_indexer(edges[end].to_numpy(dtype=object)) for end in ("a", "b")]
    if not all((found >= 0).all() for found in ends):
        return "an edge names a fingerprint the index does not hold"
    pairs = pd.DataFrame({"low": edges[["a", "b"]].min(axis=1), "high": edges[["a", "b"]].max(axis=1)})
    if (pairs["low"] == pairs["high"]).any() or pairs.duplicated().any():
        return "an edge joins a fingerprint to itself, or is listed twice"
    words_a = packed_bits(phashes[ends[0]].tolist())
    words_b = packed_bits(phashes[ends[1]].tolist())
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
