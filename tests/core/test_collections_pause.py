"""A build runs with few cyclic collections, and the caller's collector settings come back after it."""

from __future__ import annotations

import gc

import pytest

from covid19_images.core.collections_pause import BUILD_THRESHOLD, fewer_collections


@pytest.fixture
def default_threshold():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_threshold_is_raised_inside_and_restored_after(default_threshold) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (BUILD_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_it_is_restored_when_the_build_raises(default_threshold) -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a parser crashed")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_caller_that_already_collects_less_often_keeps_its_setting(default_threshold) -> None:
    gc.set_threshold(500_000, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == 500_000
    assert gc.get_threshold() == (500_000, 10, 10)


def test_sync_leaves_the_callers_setting_as_it_found_it(default_threshold, tmp_path) -> None:
    from covid19_images.sync.run import sync
    from tests.conftest import new_root

    root = new_root(tmp_path / "root", [])
    sync(root, offline=True, progress=False)
    assert gc.get_threshold() == (700, 10, 10)
