"""Published identities: an upstream saying which image of another source one of its images is.

Perceptual search finds copies that look alike; some upstreams also *say* where an image came
from. RSNA publishes which NIH ChestX-ray14 file each patientId is
(``pneumonia-challenge-dataset-mappings_2018.json``), so a parser records
``extra.same_as = ["nih-chestxray14-sample:00001998_000.png"]``: ``<source>:<path or file
name>`` of the other image. Those become ``identity`` edges of the duplicate graph, which joins
the two rows into one duplicate group (and so one split group) even when their pixels differ
(RSNA's 1024x1024 DICOM re-encoding of the NIH PNG). A target the manifest does not hold (a
source not in this root, an image outside the NIH sample) is simply no edge.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from covid19_images.core.schema import parse_extra

SAME_AS = "same_as"


def _targets(extra: str) -> list[tuple[str, str]]:
    value = parse_extra(extra).get(SAME_AS, [])
    found = []
    for item in value if isinstance(value, list) else []:
        source, sep, name = str(item).partition(":")
        if sep and source and name:
            found.append((source, name))
    return found


def identity_edges(manifest: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(row, other row)`` position pairs for every ``extra.same_as`` the manifest can resolve.

    A target names ``<source>:<path>`` (relative to the source folder) or ``<source>:<file
    name>``; a file name that several rows of that source share is ambiguous and gives no edge.
    Only rows whose ``extra`` mentions ``same_as`` are parsed, so the cost follows them.
    """
    if "extra" not in manifest.columns or not len(manifest):
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    extras = manifest["extra"].astype(str)
    linking = np.flatnonzero(extras.str.contains(SAME_AS, regex=False).to_numpy())
    if not len(linking):
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    wanted = {(s, n) for position in linking for s, n in _targets(extras.iat[position])}
    sources = {s for s, _n in wanted}
    by_path: dict[tuple[str, str], int] = {}
    by_name: dict[tuple[str, str], list[int]] = defaultdict(list)
    for position, (source, path) in enumerate(zip(manifest["source"], manifest["path"], strict=True)):
        if source in sources:
            relative = str(path).removeprefix(f"datasets/{source}/")
            by_path[(source, relative)] = position
            by_name[(source, PurePosixPath(relative).name)].append(position)
    a, b = [], []
    for position in linking:
        for source, name in _targets(extras.iat[position]):
            other = by_path.get((source, name))
            if other is None and len(by_name.get((source, name), ())) == 1:
                other = by_name[(source, name)][0]
            if other is not None and other != position:
                a.append(min(position, other))
                b.append(max(position, other))
    return np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)
