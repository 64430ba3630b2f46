"""The 3-D duplicate search's slice pairs, kept between syncs so a sync searches only new slices.

The 3-D search (:mod:`covid19_images.manifest.volume_duplicates`) needs every pair of CT slice
hashes within :data:`~covid19_images.manifest.volume_duplicates.SLICE_ACCEPT` bits. Searched
afresh each sync that is all pairs: a real STOIC2021 (about 800,000 slices) is 3 x 10^11
comparisons. But a pair's distance depends on the two hash values only, not on which file,
row or volume they came from, so the pairs found are kept keyed by hash value:

* :class:`SliceIndex` holds the distinct hash values already searched (sorted) and every pair of
  them within ``radius`` bits;
* :func:`slice_pairs` searches only the values not in the index against all current values
  (faiss range search, :func:`~covid19_images.manifest.near_index.pairs_within` with
  ``queries``), takes the stored pairs whose two values are still present, and expands value
  pairs back to slice positions (equal values at several positions pair at distance 0). The
  result is exactly the all-pairs search over the current slices; the cost is ``O(k N)`` for
  ``k`` new slices among ``N``, and ``O(N + pairs)`` when nothing is new.

The index is a file in the git folder that anyone can damage: :meth:`SliceIndex.load` checks
every stored value and pair (hex, sorted, unique, each pair at the distance its hashes really
have and within the radius) and ignores an index that fails, which then is rebuilt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covid19_images.imaging.fingerprints import PHASH_HEX
from covid19_images.manifest.near_index import pairs_within

#: Bump when the meaning of the stored files changes; an index of another version is ignored.
SLICE_INDEX_VERSION = 1
_FILES = ("slice-index.json", "slice-hashes.npy", "slice-pairs.npy")
_HEX = np.zeros(256, dtype=bool)
_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = True


def packed(values: np.ndarray) -> np.ndarray:
    """``S64`` hex hashes as an ``(n, 32)`` uint8 array (one ``bytes.fromhex`` over all of them)."""
    return np.frombuffer(bytes.fromhex(values.tobytes().decode("ascii")), dtype=np.uint8).reshape(len(values), 32)


def as_values(hashes: Sequence[str]) -> np.ndarray:
    """64-hex strings as a fixed-width ``S64`` array: sorting and lookups run in C, not per Python object."""
    return np.asarray(list(hashes), dtype=f"S{PHASH_HEX}")


@dataclass
class SliceIndex:
    """Distinct slice hash values searched (sorted) and their pairs ``(a, b, distance)``, ``a < b``."""

    hashes: np.ndarray  # S64 array of hex hashes, sorted, unique
    pairs: np.ndarray  # (p, 3) int64: rows into ``hashes`` and the distance
    radius: int
    #: how many values the call that made this index searched (the rest came from the stored index)
    searched: int = 0

    @classmethod
    def load(cls, directory: Path, radius: int) -> SliceIndex | None:
        """The stored index, or None when absent, of another radius or version, or damaged."""
        try:
            meta = json.loads((directory / _FILES[0]).read_bytes())
            if meta != {"radius": radius, "version": SLICE_INDEX_VERSION}:
                return None
            hashes = np.load(directory / _FILES[1], allow_pickle=False)
            if hashes.dtype != np.dtype(f"S{PHASH_HEX}") or hashes.ndim != 1:
                return None
            pairs = np.load(directory / _FILES[2], allow_pickle=False).astype(np.int64, copy=False)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        index = cls(hashes, pairs.reshape(-1, 3) if pairs.size else np.zeros((0, 3), np.int64), radius)
        return index if index.problem() is None else None

    def save(self, directory: Path) -> None:
        """Write the index; the marker goes last, so a torn write is ignored next time."""
        from covid19_images.core.atomic import write_atomic

        directory.mkdir(parents=True, exist_ok=True)
        (directory / _FILES[0]).unlink(missing_ok=True)
        for name, array in ((_FILES[1], self.hashes), (_FILES[2], self.pairs)):
            with open(directory / f"{name}.tmp", "wb") as handle:
                np.save(handle, array, allow_pickle=False)
            (directory / f"{name}.tmp").replace(directory / name)
        meta = {"radius": self.radius, "version": SLICE_INDEX_VERSION}
        write_atomic(directory / _FILES[0], json.dumps(meta, sort_keys=True).encode())

    def problem(self) -> str | None:
        """Why the index disagrees with what it summarises, or None (see the module docstring)."""
        values = self.hashes
        digits = _HEX[np.frombuffer(values.tobytes(), dtype=np.uint8)]
        if (np.char.str_len(values) != PHASH_HEX).any() or not digits.all():
            return "a stored value is not a 256-bit hash"
        if len(values) > 1 and not (values[1:] > values[:-1]).all():
            return "stored values are not sorted and unique"
        if not len(self.pairs):
            return None
        a, b, d = self.pairs[:, 0], self.pairs[:, 1], self.pairs[:, 2]
        if (a < 0).any() or (b >= len(values)).any() or (a >= b).any():
            return "a pair names no stored value, or is not ordered"
        keys = a * len(values) + b  # pairs are stored ordered by (a, b): a repeat is a step that does not rise
        if (np.diff(keys) <= 0).any():
            return "pairs are not in order, or a pair is listed twice"
        bits = packed(values)
        real = np.bitwise_count(bits[a] ^ bits[b]).sum(axis=1, dtype=np.int64)
        if not np.array_equal(real, d) or (d > self.radius).any():
            return "a pair's distance is not the distance between its hashes"
        return None


def slice_pairs(
    hashes: Sequence[str], radius: int, stored: SliceIndex | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, SliceIndex]:
    """``(a, b, distance)`` of every pair of positions of ``hashes`` within ``radius`` bits (``a < b``,
    ordered by ``(a, b)``, as ``pairs_within`` over all of them), and the index of the values searched.

    ``hashes`` are 64-hex strings. ``stored`` (the index of the last sync, same ``radius``) saves
    searching the values it holds against each other.
    """
    values = as_values(hashes)
    distinct, inverse = np.unique(values, return_inverse=True)
    known = np.zeros(len(distinct), dtype=bool)
    kept = np.zeros((0, 3), dtype=np.int64)
    if stored is not None and stored.radius == radius and len(stored.hashes) and len(distinct):
        at = np.searchsorted(stored.hashes, distinct)
        at = np.minimum(at, len(stored.hashes) - 1)
        known = stored.hashes[at] == distinct
        here = np.full(len(stored.hashes), -1, dtype=np.int64)  # stored row -> current row
        here[at[known]] = np.flatnonzero(known)
        ends = here[stored.pairs[:, :2]] if len(stored.pairs) else np.zeros((0, 2), np.int64)
        alive = (ends >= 0).all(axis=1)
        kept = np.column_stack((ends[alive], stored.pairs[alive, 2]))  # stored order keeps a < b
    new = np.flatnonzero(~known)
    found = np.zeros((0, 3), dtype=np.int64)
    if len(new) and len(distinct) > 1:
        a, b, d = pairs_within(packed(distinct), radius, queries=None if len(new) == len(distinct) else new)
        found = np.column_stack((a, b, d))
    value_pairs = np.concatenate((kept, found)).astype(np.int64)
    ordered = value_pairs[np.lexsort((value_pairs[:, 1], value_pairs[:, 0]))]
    index = SliceIndex(distinct, ordered, radius, searched=len(new))
    a, b, d = _positions(value_pairs, np.asarray(inverse, dtype=np.int64).reshape(-1), len(distinct))
    return a, b, d, index


def _positions(value_pairs: np.ndarray, inverse: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value pairs -> position pairs: every position of one value with every position of the other,
    and every two positions of one value (distance 0)."""
    order = np.argsort(inverse, kind="stable")  # positions grouped by value
    sizes = np.bincount(inverse, minlength=count)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    u, v, d = value_pairs[:, 0], value_pairs[:, 1], value_pairs[:, 2]
    total = sizes[u] * sizes[v]
    pair = np.repeat(np.arange(len(u)), total)
    offset = np.arange(int(total.sum())) - np.repeat(np.cumsum(total) - total, total)
    cross_a = order[starts[u[pair]] + offset // sizes[v[pair]]]
    cross_b = order[starts[v[pair]] + offset % sizes[v[pair]]]
    parts_a, parts_b, parts_d = [cross_a], [cross_b], [d[pair]]
    for value in np.flatnonzero(sizes > 1).tolist():  # equal values: every two of their positions
        members = order[starts[value] : starts[value] + sizes[value]]
        i, j = np.triu_indices(len(members), k=1)
        parts_a.append(members[i])
        parts_b.append(members[j])
        parts_d.append(np.zeros(len(i), dtype=np.int64))
    a, b, d = np.concatenate(parts_a), np.concatenate(parts_b), np.concatenate(parts_d)
    low, high = np.minimum(a, b), np.maximum(a, b)
    ordered = np.lexsort((high, low))
    return low[ordered].astype(np.int64), high[ordered].astype(np.int64), d[ordered].astype(np.int64)
