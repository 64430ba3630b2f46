"""Patient-level, stable split assignment.

A split group is the connected component of (same source-namespaced patient) and (same
duplicate group). Its split is a pure function of the group key, so images added upstream
never move an existing image unless two existing groups merge.
"""

from __future__ import annotations

import hashlib

import pandas as pd

SPLIT_SALT = "covid19-images/v1"
DEFAULT_RATIOS: tuple[tuple[str, float], ...] = (("train", 0.8), ("val", 0.1), ("test", 0.1))


def bucket(key: str, salt: str = SPLIT_SALT) -> float:
    """A uniform number in [0, 1) from a key: stable across machines and Python versions."""
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for(key: str, ratios: tuple[tuple[str, float], ...] = DEFAULT_RATIOS) -> str:
    value, edge = bucket(key), 0.0
    for name, share in ratios:
        edge += share
        if value < edge:
            return name
    return ratios[-1][0]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # the smaller key wins, so a group's key is its smallest member: stable under growth
            keep, drop = (ra, rb) if ra < rb else (rb, ra)
            self.parent[drop] = keep


def assign_split_groups(manifest: pd.DataFrame) -> pd.Series:
    """The split group of every row: the smallest patient key in its connected component."""
    sets = _UnionFind()
    for patient, dup in zip(manifest["patient_id"], manifest["dup_group"], strict=True):
        sets.find(patient)
        if dup:
            sets.union(patient, f"\uffffdup:{dup}")  # sorts last: never the group key
    return pd.Series([sets.find(p) for p in manifest["patient_id"]], index=manifest.index, dtype=object)


def assign_splits(manifest: pd.DataFrame) -> pd.DataFrame:
    """Fill ``split_group`` and ``split`` in place and return the frame."""
    if manifest.empty:
        return manifest
    manifest["split_group"] = assign_split_groups(manifest)
    manifest["split"] = manifest["split_group"].map(split_for)
    return manifest
