"""The whole-manifest stages of a build take shortcuts so that a one-image change costs the change;
each shortcut must answer exactly as the plain computation over every row does.

``test_incremental.py`` and ``tests/sync`` prove the incremental build equals a rebuild on random
upstream changes; these tests aim at each shortcut's own edge: rows of a source that are not one
slice, a previous manifest the build cannot trust, and so on.
"""

from __future__ import annotations

import random

import pandas as pd

from covid19_images.manifest.build import _PreviousRows


def test_previous_rows_of_a_source_are_the_rows_a_mask_selects() -> None:
    """A sorted manifest gives each source one slice; a hand-made or older one interleaves them."""
    rng = random.Random(7)
    sources = [rng.choice(["a", "b", "c"]) for _ in range(60)]
    ordered = pd.DataFrame({"source": sorted(sources), "path": [f"p{i}" for i in range(60)]})
    shuffled = pd.DataFrame({"source": sources, "path": [f"p{i}" for i in range(60)]}, index=rng.sample(range(99), 60))
    for previous in (ordered, shuffled, ordered.iloc[:0]):
        rows_of = _PreviousRows(previous)
        for name in ("a", "b", "c", "absent"):
            pd.testing.assert_frame_equal(rows_of(name), previous[previous["source"] == name])
