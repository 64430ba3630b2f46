"""Duplicate groups: the same picture appearing more than once, within or across sources.

Redistributions such as Darshan's Kaggle set hold resized, re-encoded copies of ieee8023 and
Zhang Lab pictures, so a copy in train and its original in test would leak. Three kinds of
edge join two rows into one duplicate group:

* ``file``: identical bytes (``sha256``);
* ``pixels``: identical decoded grayscale pixels (``pixel_sha256``), e.g. a lossless re-save;
  not for blank pictures (no ``phash``): two black CT slices are not the same picture;
* ``near``: a perceptual hash close enough (Hamming distance of the 256-bit ``phash``).
  Pairs at or below :data:`NEAR_ACCEPT` are the same picture by the measurement in
  ``docs/dedup-threshold.md``; pairs up to :data:`NEAR_CANDIDATE` are only candidates and are
  confirmed on pixels (normalised MSE of 64x64 thumbnails at most :data:`CONFIRM_MSE`), because
  chest X-rays all look alike and a perceptual hash alone puts different patients together.

Candidate search compares all pairs, but as float32 matrix products of +-1 bit vectors in
tiles (BLAS, not Python loops): 10,000 hashes take about 1 s, 100,000 about 85 s on two cores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from covid19_images.core.unionfind import UnionFind
from covid19_images.imaging.fingerprints import (
    PHASH_BITS,
    PHASH_HEX,
    normalised_thumbnail,
    thumbnail_mse,
)

#: Hamming distance at or below which two rows are the same picture without a pixel check.
NEAR_ACCEPT = 24
#: Hamming distance at or below which a pair is a candidate, kept only if the pixels agree.
NEAR_CANDIDATE = 48
#: Largest mean squared difference of two z-scored 64x64 thumbnails that still counts as a match.
CONFIRM_MSE = 0.08


def hash_bits(hashes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(``positions`` of the usable hashes, their bits as a float32 +-1 matrix).

    Hashes of another length (an old 64-bit manifest, a blank picture) are skipped: they
    cannot be compared with the 256-bit ones.
    """
    positions = [i for i, h in enumerate(hashes) if isinstance(h, str) and len(h) == PHASH_HEX]
    if not positions:
        return np.zeros(0, dtype=np.int64), np.zeros((0, PHASH_BITS), dtype=np.float32)
    raw = np.frombuffer(b"".join(bytes.fromhex(hashes[i]) for i in positions), dtype=np.uint8)
    bits = np.unpackbits(raw.reshape(len(positions), PHASH_BITS // 8), axis=1).astype(np.float32)
    return np.asarray(positions, dtype=np.int64), bits * 2.0 - 1.0


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex hashes of the same length."""
    if len(a) != len(b):
        raise ValueError(f"hashes of different lengths ({len(a)} and {len(b)} hex digits)")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def near_pairs(
    hashes: Sequence[str], max_distance: int, *, rows_per_tile: int = 1024, cols_per_tile: int = 8192
) -> Iterator[tuple[int, int, int]]:
    """Every pair ``(i, j, distance)`` with ``i < j`` whose hashes differ in at most ``max_distance`` bits.

    For +-1 vectors the dot product is ``bits - 2 * distance``, so one float32 matrix product
    per tile measures a whole block of pairs exactly (the values are small integers). Tiles
    keep memory near 32 MB whatever the number of hashes.
    """
    positions, bits = hash_bits(hashes)
    n = len(positions)
    least = PHASH_BITS - 2 * max_distance - 0.5
    for start in range(0, n, rows_per_tile):
        block = bits[start : start + rows_per_tile]
        for col in range(start, n, cols_per_tile):
            dots = block @ bits[col : col + cols_per_tile].T
            ii, jj = np.nonzero(dots >= least)
            for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
                a, b = start + i, col + j
                if a < b:
                    yield int(positions[a]), int(positions[b]), round((PHASH_BITS - float(dots[i, j])) / 2)


ThumbnailSource = Callable[[int], "np.ndarray | None"]


def file_thumbnails(root: Path, manifest: pd.DataFrame) -> ThumbnailSource:
    """Thumbnails decoded on demand from the files under ``root`` (None when a file cannot be read).

    Only rows in a candidate pair are ever decoded, each at most once per call.
    """
    from covid19_images.imaging.decode import decode_file

    cache: dict[int, np.ndarray | None] = {}
    paths = list(manifest["path"])
    formats = list(manifest["format"]) if "format" in manifest.columns else [""] * len(manifest)

    def thumbnail(position: int) -> np.ndarray | None:
        if position not in cache:
            try:
                pixels = decode_file(Path(root) / paths[position], frame=None, fmt=formats[position] or None).pixels
                cache[position] = normalised_thumbnail(pixels)
            except Exception:  # noqa: BLE001 - an unreadable file is reported by verify, not here
                cache[position] = None
        return cache[position]

    return thumbnail


@dataclass
class DuplicateEdge:
    """Why two rows (positions in the manifest) are in one duplicate group."""

    a: int
    b: int
    kind: str  # "file", "pixels" or "near"
    distance: int | None = None
    mse: float | None = None


@dataclass
class Duplicates:
    """Duplicate groups plus the evidence: the edges kept and the candidates turned down."""

    groups: pd.Series
    edges: list[DuplicateEdge] = field(default_factory=list)
    rejected: list[DuplicateEdge] = field(default_factory=list)
    unconfirmed: list[DuplicateEdge] = field(default_factory=list)


def find_duplicates(
    manifest: pd.DataFrame,
    root: Path | None = None,
    *,
    accept: int = NEAR_ACCEPT,
    candidate: int = NEAR_CANDIDATE,
    confirm_mse: float = CONFIRM_MSE,
    thumbnails: ThumbnailSource | None = None,
) -> Duplicates:
    """Exact and near-duplicate edges, and the group of every row.

    Without ``root`` (or ``thumbnails``) nothing can be decoded, so only pairs at or below
    ``accept`` count as near duplicates; candidates above it are listed as ``unconfirmed``.

    Args:
        manifest: rows with ``image_id``, ``sha256``, ``pixel_sha256`` and ``phash``.
        root: project root, to decode thumbnails of candidate pairs from the files.
        accept: phash distance (bits) at or below which a pair is a duplicate without a pixel check.
        candidate: phash distance up to which a pair is checked on its thumbnails.
        confirm_mse: largest thumbnail difference (:func:`~covid19_images.imaging.fingerprints.thumbnail_mse`)
            that confirms a candidate.
        thumbnails: a thumbnail source to use instead of decoding under ``root`` (tests, caches).
    """
    ids = [str(i) for i in manifest["image_id"]]
    hashes = [str(h) for h in manifest["phash"]] if "phash" in manifest.columns else [""] * len(manifest)
    edges: list[DuplicateEdge] = []
    for column, kind in (("sha256", "file"), ("pixel_sha256", "pixels")):
        first: dict[str, int] = {}
        for position, value in enumerate(manifest[column] if column in manifest.columns else []):
            if not value or (kind == "pixels" and not hashes[position]):
                continue  # two blank slices have equal pixels but are not the same picture
            if value in first:
                edges.append(DuplicateEdge(first[value], position, kind))
            else:
                first[value] = position
    exact = {(e.a, e.b) for e in edges}
    if thumbnails is None and root is not None:
        thumbnails = file_thumbnails(root, manifest)
    rejected: list[DuplicateEdge] = []
    unconfirmed: list[DuplicateEdge] = []
    for a, b, distance in near_pairs(hashes, max(accept, candidate)):
        if (a, b) in exact:
            continue
        edge = DuplicateEdge(a, b, "near", distance)
        if distance <= accept:
            edges.append(edge)
            continue
        ta = thumbnails(a) if thumbnails else None
        tb = thumbnails(b) if thumbnails and ta is not None else None
        if ta is None or tb is None:
            unconfirmed.append(edge)
            continue
        edge.mse = thumbnail_mse(ta, tb)
        (edges if edge.mse <= confirm_mse else rejected).append(edge)
    sets = UnionFind()
    for image_id in ids:
        sets.find(image_id)
    for edge in edges:
        sets.union(ids[edge.a], ids[edge.b])
    roots = [sets.find(i) for i in ids]
    sizes = pd.Series(roots).value_counts()
    groups = pd.Series([r if sizes[r] > 1 else "" for r in roots], index=manifest.index, dtype=object)
    return Duplicates(groups, edges, rejected, unconfirmed)


def assign_dup_groups(manifest: pd.DataFrame, root: Path | None = None) -> pd.Series:
    """A duplicate-group id per row (the smallest member ``image_id``), ``""`` for singletons.

    The smallest member id is stable while a group only grows, which keeps ``dup_group``
    values from churning between syncs.
    """
    if manifest.empty:
        return pd.Series([], index=manifest.index, dtype=object)
    return find_duplicates(manifest, root).groups


def edge_table(manifest: pd.DataFrame, edges: Sequence[DuplicateEdge]) -> pd.DataFrame:
    """Edges as rows naming both images (for reports and tests)."""
    columns = ["kind", "distance", "mse", "image_id_a", "source_a", "path_a", "image_id_b", "source_b", "path_b"]
    rows = []
    for edge in edges:
        a, b = manifest.iloc[edge.a], manifest.iloc[edge.b]
        rows.append(
            [
                edge.kind,
                edge.distance,
                edge.mse,
                a["image_id"],
                a["source"],
                a["path"],
                b["image_id"],
                b["source"],
                b["path"],
            ]
        )
    return pd.DataFrame(rows, columns=columns)


def group_pairs(manifest: pd.DataFrame) -> pd.DataFrame:
    """All pairs of rows that share a ``dup_group`` (``source_a``/``source_b`` tell within vs across)."""
    rows = []
    grouped = manifest[manifest["dup_group"].astype(str) != ""].groupby("dup_group", sort=True)
    for group, members in grouped:
        members = members.sort_values("image_id")
        records = members[["image_id", "source", "path"]].to_numpy().tolist()
        for i in range(len(records)):
            for j in range(i + 1, len(records)):
                rows.append([group, *records[i], *records[j]])
    return pd.DataFrame(
        rows, columns=["dup_group", "image_id_a", "source_a", "path_a", "image_id_b", "source_b", "path_b"]
    )
