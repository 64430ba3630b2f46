"""``verify`` for the duplicate groups: are they the groups a fresh search gives?

Sync builds ``dup_group`` from its near-duplicate index, a cache it keeps in the git folder
so that unchanged pictures are not searched again. A cache is only a shortcut: an edge
added to it would merge a pneumonia and a normal picture (and pull a test image into
train), an edge removed would let one picture sit in two splits. Sync re-derives what it
cheaply can from the index (``near_index_check.stored_index_problem``); ``verify`` does the rest:
one full search over the manifest's hashes, pixel checks of the candidates from the files,
no index, and every row whose group differs is a ``dup_groups`` finding (failing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def verify_groups(root: Path, manifest: pd.DataFrame, result: Any) -> None:
    """Add a ``dup_groups`` finding for every row whose group is not the fresh search's."""
    from covid19_images.manifest.duplicates import find_duplicates

    if manifest.empty or "phash" not in manifest.columns:
        return
    frame = manifest.reset_index(drop=True)
    fresh = find_duplicates(frame, root).groups.astype(str).to_numpy()
    stored = frame["dup_group"].astype(str).to_numpy()
    for position in (fresh != stored).nonzero()[0].tolist():
        row = frame.iloc[position]
        result.dup_groups.append(
            {
                "source": str(row["source"]),
                "path": str(row["path"]),
                "stored": stored[position],
                "fresh": fresh[position],
            }
        )
