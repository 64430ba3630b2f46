"""Fewer garbage collections while a build allocates millions of short-lived, acyclic objects.

A sync at 50,000 images loads the row memo (about a million tuples and strings) and creates a
row object per image several times over. CPython's cyclic collector runs a young-generation pass
every 700 allocations and, every so often, a full pass over every live object: with the memo
alive, those full passes cost about a second of a one-image sync (measured, docs/benchmarks.md).
Nothing a build makes relies on the cycle collector to be freed in time (reference counting frees
it), so the build runs with a much higher threshold and the caller's settings come back after.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between two young-generation passes during a build (CPython's default is 700).
BUILD_THRESHOLD = 100_000


@contextmanager
def fewer_collections(threshold: int = BUILD_THRESHOLD) -> Iterator[None]:
    """Run the block with the young-generation threshold at least ``threshold``; restore it after."""
    before = gc.get_threshold()
    gc.set_threshold(max(threshold, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
