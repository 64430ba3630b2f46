"""Duplicate pairs worth a person's look: the ones nearest the decision thresholds.

The last sync's near-duplicate index (``near-edges.parquet`` in the root's cache) holds every
pair the search measured: its Hamming distance and, for candidates, the thumbnail MSE and the
outcome. A pair far inside a threshold (distance 0, MSE 0.001) needs nobody; the ones close to
``NEAR_ACCEPT`` bits or to ``CONFIRM_MSE`` are where the search is most likely wrong, so they
come first. Without a stored index (a root synced elsewhere) the pairs are measured again from
the manifest's hashes alone (no pixel check: candidates show as unconfirmed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from covid19_images.browse.collection import Collection
from covid19_images.manifest.build import index_settings
from covid19_images.manifest.duplicates import CONFIRM_MSE, NEAR_ACCEPT, NEAR_CANDIDATE, near_pairs
from covid19_images.manifest.near_index import NearIndex
from covid19_images.manifest.reviews import read_reviews
from covid19_images.manifest.source_cache import cache_dir_of

MAX_PAIRS = 60


@dataclass
class Pair:
    a: str  # image ids, a < b
    b: str
    distance: int
    mse: float | None
    outcome: str  # near (joined), rejected (pixels differ), unconfirmed
    closeness: float  # 0 = on a threshold, 1 = far from it
    decision: str = ""  # a reviewer's decision in force: same / different / ""


def _closeness(distance: int, mse: float | None) -> float:
    if mse is not None:
        return min(1.0, abs(mse - CONFIRM_MSE) / CONFIRM_MSE)
    if distance <= NEAR_ACCEPT:
        return (NEAR_ACCEPT - distance) / NEAR_ACCEPT
    return (distance - NEAR_ACCEPT) / max(1, NEAR_CANDIDATE - NEAR_ACCEPT)


def _stored_edges(collection: Collection) -> pd.DataFrame | None:
    """The stored index's edges with keys turned into image ids (the first row holding each file)."""
    directory = cache_dir_of(collection.root)
    index = NearIndex.load(directory, index_settings()) if directory is not None else None
    if index is None:
        return None
    m = collection.manifest
    ordered = m.sort_values("image_id", kind="mergesort")
    first = pd.Series(ordered["image_id"].to_numpy(), index=(ordered["phash"] + ordered["sha256"]).to_numpy())
    first = first[~first.index.duplicated()]
    edges = index.edges.copy()
    edges["a"] = first.reindex(edges["a"]).to_numpy()
    edges["b"] = first.reindex(edges["b"]).to_numpy()
    return edges.dropna(subset=["a", "b"])


def _measured_edges(collection: Collection) -> pd.DataFrame:
    m = collection.manifest.drop_duplicates("sha256")
    hashes = m["phash"].astype(str).tolist()
    found = list(near_pairs(hashes, NEAR_CANDIDATE))
    ids = m["image_id"].to_numpy()
    return pd.DataFrame(
        {
            "a": [ids[i] for i, _, _ in found],
            "b": [ids[j] for _, j, _ in found],
            "distance": [d for _, _, d in found],
            "mse": [math.nan] * len(found),
            "status": ["near" if d <= NEAR_ACCEPT else "unconfirmed" for _, _, d in found],
        }
    )


def candidate_pairs(collection: Collection, limit: int = MAX_PAIRS) -> list[Pair]:
    """Pairs between two different files, nearest a threshold first (then by ids, for a stable order)."""
    edges = _stored_edges(collection)
    if edges is None:
        edges = _measured_edges(collection)
    reviews = read_reviews(collection.root)
    sha = collection.manifest.set_index("image_id")["sha256"]
    pairs = []
    for a, b, distance, mse, status in edges[["a", "b", "distance", "mse", "status"]].itertuples(index=False):
        a, b = sorted((str(a), str(b)))
        if a == b or sha.get(a) == sha.get(b):
            continue
        measured = None if mse is None or (isinstance(mse, float) and np.isnan(mse)) else float(mse)
        pair = Pair(a, b, int(distance), measured, str(status), _closeness(int(distance), measured))
        pair.decision = reviews.decision(str(sha[a]), str(sha[b]))
        pairs.append(pair)
    pairs.sort(key=lambda p: (p.closeness, p.a, p.b))
    return pairs[:limit]
