"""A build runs with few cyclic collections, and the caller's collector settings come back after it."""

from __future__ import annotations

import gc

import pytest

from covid19_images.core.collections_pause import BUILD_THRESHOLD, fewer_collections, loaded_for_the_build


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
    assert gc.get_freeze_count() == 0 and gc.isenabled()


class _Record:
    """A tracked object, as the memo's tuples of containers are."""


def _frozen(thing: object) -> bool:
    """Whether ``thing`` is in the permanent generation (``gc.get_objects`` lists the other three)."""
    return not any(tracked is thing for tracked in gc.get_objects())


def test_what_the_build_keeps_is_loaded_without_collections_and_frozen_until_the_build_ends() -> None:
    assert gc.get_freeze_count() == 0
    with fewer_collections():
        with loaded_for_the_build():
            assert not gc.isenabled()
            kept = [_Record() for _ in range(1000)]
        assert gc.isenabled()
        assert _frozen(kept[0]) and _frozen(kept[-1])
        with fewer_collections():  # a nested block does not unfreeze what the outer one keeps
            pass
        assert _frozen(kept[0])
    assert not _frozen(kept[0]) and gc.get_freeze_count() == 0 and gc.isenabled()


def test_outside_a_build_or_for_a_caller_that_freezes_nothing_is_frozen_or_unfrozen() -> None:
    mine = _Record()
    with loaded_for_the_build():
        assert gc.isenabled()
    assert not _frozen(mine) and gc.get_freeze_count() == 0
    theirs = _Record()
    gc.freeze()  # a caller that froze its own objects (before forking, say)
    try:
        with fewer_collections(), loaded_for_the_build():
            assert gc.isenabled()  # nothing disabled for a caller that freezes objects itself
            loaded = _Record()
        assert _frozen(theirs) and not _frozen(loaded)  # theirs left frozen, nothing of ours frozen
    finally:
        gc.unfreeze()
