"""Thread counts for file passes: the caller's choice wins, the default is bounded."""

from __future__ import annotations

import os

from covid19_images.core.workers import MAX_IO_WORKERS, io_workers


def test_explicit_count_is_kept() -> None:
    assert io_workers(3) == 3
    assert io_workers(64) == 64


def test_default_is_twice_the_cores_at_most_the_cap(monkeypatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert io_workers() == 4
    monkeypatch.setattr(os, "cpu_count", lambda: 32)
    assert io_workers(None) == MAX_IO_WORKERS
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert io_workers() == 2
