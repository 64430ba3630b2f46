"""Duplicate groups: the same picture appearing more than once, within or across sources.

Redistributions such as Darshan's Kaggle set hold resized, re-encoded copies of ieee8023 and
Zhang Lab pictures, so a copy in train and its original in test would leak. Three kinds of
edge join two rows into one duplicate group:

* ``file``: identical bytes (``sha256``);
* ``pixels``: identical decoded grayscale pixels (``pixel_sha256``), e.g. a lossless re-save;
  not for blank pictures (no ``phash``): two black CT slices are not the same picture;
* ``identity``: the upstream says so (``extra.same_as``, e.g. RSNA's published NIH image
  for each patientId; :mod:`covid19_images.manifest.identities`), whatever the pixels;
* ``volume``: a CT volume, DICOM series or slice held by another volume, slice for slice
  (:mod:`covid19_images.manifest.volume_duplicates`: copies, resamples, subsets of slices);
* ``near``: a perceptual hash close enough (Hamming distance of the 256-bit ``phash``).
  Pairs at or below :data:`NEAR_ACCEPT` are the same picture by the measurement in
  ``docs/dedup-threshold.md``; pairs up to :data:`NEAR_CANDIDATE` are only candidates and are
  confirmed on pixels (normalised MSE of 64x64 thumbnails at most :data:`CONFIRM_MSE`), because
  chest X-rays all look alike and a perceptual hash alone puts different patients together.

Near pairs are searched once per distinct perceptual hash, exactly, by
:mod:`covid19_images.manifest.near_index`; given that module's :class:`NearIndex` from the last
sync, only hashes not seen before are searched (against all others). Groups are the connected
components of a graph with one edge per row (never one per pair, so 9,000 copies of one
picture cost 9,000 edges), found by ``scipy.sparse.csgraph``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from covid19_images.imaging.fingerprints import PHASH_HEX, normalised_thumbnail, thumbnail_mse
from covid19_images.manifest.identities import identity_edges
from covid19_images.manifest.near_index import NearIndex, hash_bytes, key_index, packed_bits, pairs_within
from covid19_images.manifest.near_index_check import stored_index_problem
from covid19_images.manifest.reviews import Reviews, pair_key

__all__ = ["NearIndex"]

#: Hamming distance at or below which two rows are the same picture without a pixel check.
NEAR_ACCEPT = 24
#: Hamming distance at or below which a pair is a candidate, kept only if the pixels agree.
NEAR_CANDIDATE = 48
#: Largest mean squared difference of two z-scored 64x64 thumbnails that still counts as a match.
CONFIRM_MSE = 0.08


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex hashes of the same length."""
    if len(a) != len(b):
        raise ValueError(f"hashes of different lengths ({len(a)} and {len(b)} hex digits)")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def near_pairs(hashes: Sequence[str], max_distance: int) -> Iterator[tuple[int, int, int]]:
    """Every pair ``(i, j, distance)`` with ``i < j`` whose hashes differ in at most ``max_distance`` bits."""
    positions, bits = hash_bytes(hashes)
    a, b, d = pairs_within(bits, max_distance)
    yield from map(tuple, np.column_stack((positions[a], positions[b], d)).tolist())


ThumbnailSource = Callable[[int], "np.ndarray | None"]


def file_thumbnails(root: Path, manifest: pd.DataFrame) -> ThumbnailSource:
    """Thumbnails decoded on demand from the files under ``root`` (None when a file cannot be read).

    Only rows in a candidate pair are ever decoded, each at most once per call.
    """
    from covid19_images.imaging.decode import decode_file

    cache: dict[int, np.ndarray | None] = {}
    paths = manifest["path"]  # looked up per candidate: copying 200,000 Arrow strings cost 0.3 s
    formats = manifest["format"] if "format" in manifest.columns else None

    def thumbnail(position: int) -> np.ndarray | None:
        if position not in cache:
            fmt = str(formats.iat[position]) if formats is not None else ""
            try:
                pixels = decode_file(Path(root) / str(paths.iat[position]), frame=None, fmt=fmt or None).pixels
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
    kind: str  # "file", "pixels", "identity", "volume" (3-D), "near" or "reviewed" (a person said: the same picture)
    distance: int | None = None
    mse: float | None = None


@dataclass
class Duplicates:
    """Duplicate groups plus the evidence: the edges kept and the candidates turned down.

    Near edges join one representative row per distinct file (its first row); the other rows
    of that file are joined to it by ``file`` edges. ``index`` is the near-duplicate index to
    keep for the next search.
    """

    groups: pd.Series
    edges: list[DuplicateEdge] = field(default_factory=list)
    rejected: list[DuplicateEdge] = field(default_factory=list)
    unconfirmed: list[DuplicateEdge] = field(default_factory=list)
    index: NearIndex | None = None
    overruled: list[DuplicateEdge] = field(default_factory=list)  # near edges a reviewer said are different


def _star_edges(values: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row, other row) of every group of equal usable values: one edge per extra row."""
    positions = np.flatnonzero(usable)
    if not len(positions):
        return positions, positions
    codes, _ = pd.factorize(values[positions])
    _, first_at = np.unique(codes, return_index=True)  # codes count up in order of first appearance
    first = positions[first_at[codes]]
    extra = first != positions
    return first[extra], positions[extra]


def _strings(manifest: pd.DataFrame, column: str) -> np.ndarray:
    """A column as an object array of ``str`` (``""`` where the manifest lacks it or a hand-made one
    has a blank: no edges of that kind), converted once: pandas' Arrow strings would be converted
    back and forth at every step."""
    if column not in manifest.columns:
        return np.full(len(manifest), "", dtype=object)
    values = manifest[column].to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) in ("string", "empty"):
        return values
    # as objects first: a column of blanks reads as float64, which pandas 4 will refuse to fill with ""
    return manifest[column].astype(object).fillna("").astype(str).to_numpy(dtype=object)


def _representatives(phashes: np.ndarray, files: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Per distinct usable phash (in order of sorted phash), the row with the smallest (file, row).

    Only hashes that several rows share are looked at one by one: the cost follows the copies.
    """
    positions = np.flatnonzero(usable)
    codes, uniques = pd.factorize(phashes[positions])
    chosen = np.full(len(uniques), -1, dtype=np.int64)
    counts = np.bincount(codes, minlength=len(uniques))
    single = counts[codes] == 1
    chosen[codes[single]] = positions[single]
    best: dict[int, tuple[str, int]] = {}
    for code, row in zip(codes[~single].tolist(), positions[~single].tolist(), strict=True):
        candidate = (files[row], row)
        if code not in best or candidate < best[code]:
            best[code] = candidate
    for code, (_file, row) in best.items():
        chosen[code] = row
    order = np.argsort(np.asarray(uniques, dtype=f"U{PHASH_HEX}"), kind="stable")  # in C: all are that wide
    return chosen[order]


def _settings(accept: int, candidate: int, confirm_mse: float, confirmed: bool) -> dict:
    """What an index's edges depend on; ``confirmed``: candidates could be checked on pixels.

    The names only label the values in the stored ``near-index.json``; an index is reused when
    its stored settings equal these, so a renamed key only makes old indexes inert once.
    """
    return {
        "accept": accept,  # pragma: no mutate - a label (see above)
        "candidate": candidate,  # pragma: no mutate - a label
        "confirm_mse": confirm_mse,  # pragma: no mutate - a label
        "phash_hex": PHASH_HEX,  # pragma: no mutate - a label
        "confirmed": confirmed,  # pragma: no mutate - a label
    }


def _search(
    keys: np.ndarray,
    phashes: np.ndarray,
    representative: np.ndarray,
    thumbnails: ThumbnailSource | None,
    previous: NearIndex | None,
    accept: int,
    candidate: int,
    confirm_mse: float,
) -> NearIndex:
    """The near-edge index over ``keys`` (one per distinct perceptual hash), reusing ``previous`` where it applies."""
    settings = _settings(accept, candidate, confirm_mse, thumbnails is not None)
    # object dtype, not pandas' arrow strings: hashing a million keys is then one C pass
    fingerprints = pd.Series(np.asarray(phashes, dtype=object), index=pd.Index(keys, dtype=object), dtype=object)
    old = queries = None
    distrusted = ""
    if previous is not None and previous.settings == settings:
        distrusted = stored_index_problem(previous, accept, candidate, confirm_mse) or ""
        previous = None if distrusted else previous
    if previous is not None and previous.settings == settings:
        known = previous.fingerprints
        at = key_index(known).get_indexer(fingerprints.index)  # the check's lookup table, reused
        same = at >= 0
        same[same] = known.to_numpy(dtype=object)[at[same]] == fingerprints.to_numpy()[same]
        present = pd.Index(fingerprints.index[same], dtype=object)
        ends = previous.edges
        old = ends[present.get_indexer(ends["a"].astype(object)) >= 0]
        old = old[present.get_indexer(old["b"].astype(object)) >= 0]
        queries = np.flatnonzero(~same)
    # every key's hash has 64 hex digits (find_duplicates keeps only those): no per-value check
    a, b, d = pairs_within(packed_bits(fingerprints.tolist()), max(accept, candidate), queries)
    # pairs at or below ``accept`` are near without a look; the others are candidates, checked
    # on pixels when thumbnails can be had
    status = np.where(d <= accept, "near", "unconfirmed").astype(object)
    mses = np.full(len(d), np.nan)
    for k in np.flatnonzero(d > accept).tolist() if thumbnails else []:
        ta, tb = thumbnails(int(representative[a[k]])), thumbnails(int(representative[b[k]]))
        if ta is not None and tb is not None:
            mses[k] = thumbnail_mse(ta, tb)
            status[k] = "near" if mses[k] <= confirm_mse else "rejected"
    names = fingerprints.index.to_numpy()
    fresh = pd.DataFrame({"a": names[a], "b": names[b], "distance": d, "mse": mses, "status": status})
    edges = pd.concat([old, fresh])  # pandas drops a None (no previous index)
    # the stored base this index grew from (none when the stored index was not reused)
    base = previous.base if previous is not None and previous.settings == settings else None
    return NearIndex(fingerprints, edges.reset_index(drop=True), settings, distrusted, base)


def find_duplicates(
    manifest: pd.DataFrame,
    root: Path | None = None,
    *,
    accept: int = NEAR_ACCEPT,
    candidate: int = NEAR_CANDIDATE,
    confirm_mse: float = CONFIRM_MSE,
    thumbnails: ThumbnailSource | None = None,
    index: NearIndex | None = None,
    reviews: Reviews | None = None,
) -> Duplicates:
    """Exact and near-duplicate edges, and the group of every row.

    Without ``root`` (or ``thumbnails``) nothing can be decoded, so only pairs at or below
    ``accept`` count as near duplicates; candidates above it are listed as ``unconfirmed``.
    ``index`` (from an earlier call's :attr:`Duplicates.index`) limits the search to files it
    does not hold yet; the answer is the same as without it. ``reviews`` (a person's decisions,
    :mod:`covid19_images.manifest.reviews`) drop the near edges reviewed as ``different`` and add
    an edge for each pair reviewed as ``same``; the index itself keeps what was measured.
    """
    n = len(manifest)
    ids = _strings(manifest, "image_id")
    hashes, sha, pixel = (_strings(manifest, c) for c in ("phash", "sha256", "pixel_sha256"))
    file_a, file_b = _star_edges(sha, sha != "")
    pixel_a, pixel_b = _star_edges(pixel, (pixel != "") & (hashes != ""))
    # Rows with one perceptual hash are one node of the search: at distance 0 they are joined
    # anyway (``same`` edges), so 9,000 re-encodings of one picture cost 9,000 edges, not 40
    # million pairs. The node's pixel checks use one file: the smallest ``sha256`` (content, not
    # row order, so an incremental search and a fresh one pick the same file).
    file_key, phashes = sha, hashes
    usable = np.fromiter(map(len, hashes), dtype=np.int64, count=n) == PHASH_HEX
    same_a, same_b = _star_edges(hashes, usable)
    representative = _representatives(phashes, file_key, usable)
    keys = phashes[representative] + file_key[representative]  # the phash has a fixed width
    if thumbnails is None and root is not None:
        thumbnails = file_thumbnails(root, manifest)
    found = _search(keys, phashes[representative], representative, thumbnails, index, accept, candidate, confirm_mse)
    row_of = pd.Series(representative, index=pd.Index(keys, dtype=object))
    near = found.edges
    near_a = row_of.reindex(near["a"]).to_numpy()
    near_b = row_of.reindex(near["b"]).to_numpy()
    low, high = np.minimum(near_a, near_b), np.maximum(near_a, near_b)
    kept = (near["status"] == "near").to_numpy()
    overruled = np.zeros(len(kept), dtype=bool)
    sure_a, sure_b = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if reviews is not None and (reviews.different or reviews.same):
        pairs = [pair_key(file_key[x], file_key[y]) for x, y in zip(low.tolist(), high.tolist(), strict=True)]
        overruled = kept & np.array([p in reviews.different for p in pairs], dtype=bool)
        kept = kept & ~overruled
        first_row = pd.Series(np.arange(n), index=file_key).groupby(level=0).min()
        known = [pair for pair in sorted(reviews.same) if pair[0] in first_row.index and pair[1] in first_row.index]
        sure_a = first_row.reindex([a for a, _ in known]).to_numpy().astype(np.int64)
        sure_b = first_row.reindex([b for _, b in known]).to_numpy().astype(np.int64)

    known_a, known_b = identity_edges(manifest)
    volume_a, volume_b = _volume_edges(manifest, root)
    graph_a = np.concatenate([file_a, pixel_a, known_a, volume_a, same_a, low[kept], sure_a]).astype(np.int64)
    graph_b = np.concatenate([file_b, pixel_b, known_b, volume_b, same_b, high[kept], sure_b]).astype(np.int64)
    graph = coo_matrix((np.ones(len(graph_a), dtype=np.int8), (graph_a, graph_b)), shape=(n, n))
    _, component = connected_components(graph)  # weak components of the edge list: the groups
    groups = pd.Series(_group_names(component, ids), index=manifest.index, dtype=object)

    edges = [DuplicateEdge(x, y, "file") for x, y in np.column_stack((file_a, file_b)).tolist()]
    edges += [DuplicateEdge(x, y, "pixels") for x, y in np.column_stack((pixel_a, pixel_b)).tolist()]
    edges += [DuplicateEdge(x, y, "identity") for x, y in np.column_stack((known_a, known_b)).tolist()]
    edges += [DuplicateEdge(x, y, "volume") for x, y in np.column_stack((volume_a, volume_b)).tolist()]
    exact = {(e.a, e.b) for e in edges}
    same = np.column_stack((same_a, same_b)).tolist()
    edges += [DuplicateEdge(x, y, "near", 0) for x, y in same if (x, y) not in exact]
    order = np.lexsort((high, low))
    rejected: list[DuplicateEdge] = []
    unconfirmed: list[DuplicateEdge] = []
    reviewed: list[DuplicateEdge] = []
    for position in order.tolist():
        x, y = int(low[position]), int(high[position])
        if (x, y) in exact:
            continue
        mse = float(near["mse"].iat[position])
        edge = DuplicateEdge(x, y, "near", int(near["distance"].iat[position]), None if np.isnan(mse) else mse)
        if overruled[position]:
            reviewed.append(edge)
            continue
        {"near": edges, "rejected": rejected, "unconfirmed": unconfirmed}[near["status"].iat[position]].append(edge)
    edges += [DuplicateEdge(x, y, "reviewed") for x, y in zip(sure_a.tolist(), sure_b.tolist(), strict=True)]
    return Duplicates(groups, edges, rejected, unconfirmed, found, reviewed)


def _group_names(component: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Each row's group: the smallest ``image_id`` of its component, ``""`` alone; rows in groups only are visited."""
    names = np.full(len(ids), "", dtype=object)
    grouped = np.flatnonzero(np.bincount(component)[component] > 1)
    smallest: dict[int, str] = {}
    for label, name in zip(component[grouped].tolist(), ids[grouped].tolist(), strict=True):
        if label not in smallest or name < smallest[label]:
            smallest[label] = name
    names[grouped] = [smallest[label] for label in component[grouped].tolist()]
    return names


def _volume_edges(manifest: pd.DataFrame, root: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """3-D edges (:mod:`covid19_images.manifest.volume_duplicates`); none without files to read."""
    empty = np.zeros(0, dtype=np.int64)
    if root is None or not {"format", "modality", "path"} <= set(manifest.columns):
        return empty, empty
    if not manifest["format"].astype(str).isin(("nifti", "metaimage")).any():
        return empty, empty
    from covid19_images.manifest.volume_duplicates import cached_reader, index_folder, volume_edges

    frame = manifest.reset_index(drop=True)
    return volume_edges(frame, cached_reader(root, frame), index_dir=index_folder(root))


def assign_dup_groups(manifest: pd.DataFrame, root: Path | None = None) -> pd.Series:
    """A duplicate-group id per row (the smallest member ``image_id``), ``""`` for singletons.

    The smallest member id is stable while a group only grows, which keeps ``dup_group``
    values from churning between syncs.
    """
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
