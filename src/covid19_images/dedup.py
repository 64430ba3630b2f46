"""Duplicate groups: the same picture appearing more than once, within or across sources.

Rows share a duplicate group when their bytes are identical or their decoded grayscale
pixels are identical (a re-save or format change of the same image).
"""

from __future__ import annotations

import pandas as pd

from .splits import _UnionFind


def assign_dup_groups(manifest: pd.DataFrame) -> pd.Series:
    """A duplicate-group id per row (the smallest member ``image_id``), ``""`` for singletons."""
    sets = _UnionFind()
    for column in ("sha256", "pixel_sha256"):
        first: dict[str, str] = {}
        for image_id, value in zip(manifest["image_id"], manifest[column], strict=True):
            sets.find(image_id)
            if not value:
                continue
            if value in first:
                sets.union(first[value], image_id)
            else:
                first[value] = image_id
    roots = [sets.find(i) for i in manifest["image_id"]]
    sizes = pd.Series(roots).value_counts()
    return pd.Series([r if sizes[r] > 1 else "" for r in roots], index=manifest.index, dtype=object)
