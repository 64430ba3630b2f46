"""Behaviours the mutation round found unchecked: augment_splits validation, the epoch in the shard order."""

from __future__ import annotations

import pytest

from covid19_images.loaders._options import make_options
from covid19_images.loaders.shards import plan


@pytest.mark.parametrize(
    ("given", "expected"),
    [("train", ("train",)), (["train", "val"], ("train", "val")), (("test",), ("test",)), ([], ())],
)
def test_augment_splits_accepts_split_names(tmp_path, given, expected) -> None:
    assert make_options("xray", root=tmp_path, augment_splits=given).augment_splits == expected


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        ("training", ValueError, "unknown augment_splits 'training'"),
        (["train", "Val"], ValueError, "unknown augment_splits 'Val'"),
        (["train", None], TypeError, "augment_splits must contain strings, got None"),
        (5, TypeError, "augment_splits must be a string or a list of strings, not int"),
    ],
)
def test_augment_splits_refuses_anything_else(tmp_path, given, error, message) -> None:
    with pytest.raises(error, match=message):
        make_options("xray", root=tmp_path, augment_splits=given)


def test_the_epoch_changes_the_shard_order_and_only_when_shuffling() -> None:
    orders = [plan(12, 3, epoch, True, 1, 1)[0][0] for epoch in range(4)]
    assert all(sorted(order) == list(range(12)) for order in orders)
    assert len({tuple(order) for order in orders}) == 4  # each epoch its own order
    assert plan(12, 3, 2, True, 1, 1)[0][0] == orders[2]  # and the same one again for that epoch
    assert plan(12, 3, 1, False, 1, 1)[0][0] == list(range(12))  # no shuffling: the file order, any epoch
    two = plan(12, 3, 1, True, 2, 2)
    assert sorted(i for rank in two for worker in rank for i in worker) == list(range(12))
    assert [i for rank in two for worker in rank for i in worker] != list(range(12))
