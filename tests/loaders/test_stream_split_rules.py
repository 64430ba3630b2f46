"""Which rank and worker of a streaming loader serves which sample, and how many, rule by rule (no
framework): the rank a worker reads as whatever the launcher, each rank's length, the cut or padded
stream of ``equalize``, and the TFRecord files a ``tf.distribute`` worker is given. The torch and TF
rooms call exactly these functions; ``tests/loaders/torch/test_streaming*.py`` and
``tests/loaders/tf/test_streaming.py`` prove the same with real DDP ranks and TF workers. These are
the fast tests ``make mutation`` runs for the streaming split.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from covid19_images.loaders.shards import budgets, equalized, plan, rank_and_world_of, rank_samples, tfrecord_files


def test_a_worker_reads_as_the_live_group_else_the_rank_that_started_it_else_alone() -> None:
    assert rank_and_world_of((1, 4), (3, 8)) == (1, 4)
    assert rank_and_world_of((0, 2), None) == (0, 2)
    assert rank_and_world_of(None, (3, 8)) == (3, 8)  # a spawned/forkserver worker: no group, pickled rank
    assert rank_and_world_of(None, None) == (0, 1)


def _serve(
    counts: list[int], world: int, workers: int, equalize: str | None, shuffle: bool = True
) -> dict[tuple[int, int], list[str]]:
    """What every (rank, worker) serves in one epoch, reading shard ``i`` as samples ``"i:0"``, ``"i:1"``, ..."""
    layout = plan(len(counts), 7, 1, shuffle, world, workers)
    limits = None
    if equalize is not None:
        limits = budgets(layout, counts, equalize)
    served = {}
    for rank in range(world):
        for worker in range(workers):
            mine = layout[rank][worker]

            def read(mine: list[int] = mine) -> list[str]:
                return [f"{i}:{n}" for i in mine for n in range(counts[i])]

            budget = limits[worker] if limits is not None else None
            served[rank, worker] = list(equalized(read, budget, f"worker {worker} of rank {rank}"))
    return served


@pytest.mark.parametrize(("world", "workers"), [(1, 1), (2, 1), (2, 2), (3, 2)])
def test_without_equalize_every_sample_is_served_once_across_ranks_and_workers(world: int, workers: int) -> None:
    counts = [5, 3, 4, 4, 2, 6, 1, 5]
    served = _serve(counts, world, workers, None)
    everything = Counter(s for samples in served.values() for s in samples)
    assert everything == Counter(f"{i}:{n}" for i, c in enumerate(counts) for n in range(c))
    layout = plan(len(counts), 7, 1, True, world, workers)
    for rank in range(world):
        mine = sum(len(served[rank, w]) for w in range(workers))
        assert rank_samples(layout, counts, None, rank) == mine


def test_drop_gives_every_rank_the_smallest_count_per_worker_index() -> None:
    counts = [5, 3, 4, 4, 2, 6, 1, 5]  # 30 samples
    served = _serve(counts, 2, 2, "drop")
    layout = plan(len(counts), 7, 1, True, 2, 2)
    per_worker = [[sum(counts[i] for i in layout[r][w]) for w in range(2)] for r in range(2)]
    expected = [min(per_worker[0][w], per_worker[1][w]) for w in range(2)]
    for rank in range(2):
        assert [len(served[rank, w]) for w in range(2)] == expected
        assert rank_samples(layout, counts, "drop", rank) == sum(expected)
    every = [s for samples in served.values() for s in samples]
    assert len(every) == len(set(every)) < 30  # dropped, never repeated


def test_pad_repeats_a_worker_s_own_samples_up_to_the_largest_count() -> None:
    counts = [7, 1, 1, 1]
    layout = plan(4, 0, 0, False, 2, 1)
    assert layout == [[[0, 2]], [[1, 3]]]
    assert rank_samples(layout, counts, "pad", 0) == rank_samples(layout, counts, "pad", 1) == 8
    assert rank_samples(layout, counts, None, 1) == 2
    served = _serve(counts, 2, 1, "pad", shuffle=False)
    assert len(served[0, 0]) == len(served[1, 0]) == 8
    own = {f"{i}:{n}" for i in (1, 3) for n in range(counts[i])}
    assert set(served[1, 0]) == own and Counter(served[1, 0]) == {"1:0": 4, "3:0": 4}
    assert served[1, 0][:4] == ["1:0", "3:0", "1:0", "3:0"]  # read again from the start, in order


def test_equalized_cuts_at_the_budget_and_reads_no_further() -> None:
    reads: list[int] = []

    def read() -> list[int]:
        reads.append(1)
        return [1, 2, 3]

    assert list(equalized(read, 2, "w")) == [1, 2] and len(reads) == 1
    assert list(equalized(read, 3, "w")) == [1, 2, 3] and len(reads) == 2
    assert list(equalized(read, 0, "w")) == [] and len(reads) == 2
    assert list(equalized(read, None, "w")) == [1, 2, 3]
    assert list(equalized(read, 7, "w")) == [1, 2, 3, 1, 2, 3, 1]


def test_a_worker_with_nothing_to_read_cannot_pad() -> None:
    with pytest.raises(RuntimeError, match=r"^worker 2 of rank 1 has no shard to pad from: use fewer workers$"):
        list(equalized(list, 1, "worker 2 of rank 1"))
    assert list(equalized(list, None, "w")) == []


def test_an_export_folder_gives_its_declared_files_in_order_with_its_classes(tmp_path: Path) -> None:
    from tests.loaders.test_shard_rules import _tfrecord  # the hand-made TFRecord framing of the shard rules

    def glob_unused(pattern: str) -> list[str]:
        raise AssertionError(f"an export folder is read from its export.json, not globbed: {pattern}")

    for name, count in (("train-1.tfrecord", 2), ("train-0.tfrecord", 1), ("val-0.tfrecord", 1)):
        _tfrecord(tmp_path / name, [b"x"] * count)
    index = {
        "format": "tfrecord",
        "classes": ["covid-19", "normal"],
        "shards": {
            "train": [{"file": "train-1.tfrecord", "count": 2}, {"file": "train-0.tfrecord", "count": 1}],
            "val": [{"file": "val-0.tfrecord", "count": 1}],
        },
    }
    (tmp_path / "export.json").write_text(json.dumps(index), encoding="utf-8")
    files, classes = tfrecord_files(str(tmp_path), "train", glob_unused)
    assert files == [str(tmp_path / "train-1.tfrecord"), str(tmp_path / "train-0.tfrecord")]
    assert classes == ["covid-19", "normal"]
    assert len(tfrecord_files(str(tmp_path), None, glob_unused)[0]) == 3
    with pytest.raises(ValueError, match=r"has no 'test' shards"):
        tfrecord_files(str(tmp_path), "test", glob_unused)


def test_a_pattern_gives_every_matching_file_once_sorted(tmp_path: Path) -> None:
    import glob

    for name in ("train-2.tfrecord", "train-10.tfrecord", "train-1.tfrecord", "val-1.tfrecord"):
        (tmp_path / name).write_bytes(b"")
    files, classes = tfrecord_files(str(tmp_path / "train-{1,2,10}.tfrecord"), "train", glob.glob)
    assert files == sorted(str(tmp_path / f"train-{n}.tfrecord") for n in (1, 10, 2)) and classes is None
    files, _ = tfrecord_files(str(tmp_path / "{train,train}-*.tfrecord"), "train", glob.glob)
    assert len(files) == 3  # two patterns naming one file: read once
    with pytest.raises(FileNotFoundError, match=r"^shard pattern '.*test-\*.tfrecord' matches no file$"):
        tfrecord_files(str(tmp_path / "test-*.tfrecord"), "test", glob.glob)
