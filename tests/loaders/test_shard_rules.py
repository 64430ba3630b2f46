"""The streaming bookkeeping, rule by rule, on small hand-made shards (no sync, no framework):
what an export index must look like, what a WebDataset or TFRecord shard must hold, which rank
and worker reads which shard, the per-worker budgets, and the per-item augmentation draw keys.

``test_shard_checks.py`` proves the same promises end to end on real exports; these are the
fast tests ``make mutation`` runs for ``loaders.shards`` and ``loaders.augment``.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from covid19_images.loaders.augment import draw_seed, item_key
from covid19_images.loaders.shards import (
    DamagedExport,
    _check_index,
    budgets,
    check_export,
    check_stream_options,
    mix,
    plan,
    resolve_shards,
)

CLASSES = ["covid-19", "normal", "pneumonia"]


def _tar(path: Path, samples: list[tuple[str, object, object]], *, extra: dict[str, bytes] | None = None) -> Path:
    """A WebDataset shard: per sample ``key.png`` (a few bytes), ``key.json`` and ``key.cls``."""
    with tarfile.open(path, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for key, record, label in samples:
            add(f"{key}.png", b"\x89PNG-not-read")
            if record is not None:
                add(f"{key}.json", json.dumps(record).encode())
            if label is not None:
                add(f"{key}.cls", str(label).encode())
        for name, data in (extra or {}).items():
            add(name, data)
    return path


def _sample(key: str, split: str, label: int) -> tuple[str, dict, int]:
    return key, {"split": split, "label": CLASSES[label], "image_id": key}, label


def _index(tmp_path: Path, shards: dict[str, list[dict]], fmt: str = "webdataset", **extra: object) -> dict:
    index = {"format": fmt, "classes": CLASSES, "shards": shards, **extra}
    (tmp_path / "export.json").write_text(json.dumps(index))
    return index


def _in_another_process(code: str) -> str:
    """``code``'s output in a fresh interpreter importing the same package as this one."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout


def _tfrecord(path: Path, payloads: list[bytes], *, cut: int = 0) -> Path:
    """TFRecord framing: 8-byte little-endian length, 4-byte crc, data, 4-byte crc (crcs unchecked here;
    not zero, so a length read over the crc is wrong)."""
    data = b"".join(len(p).to_bytes(8, "little") + b"\xa5" * 4 + p + b"\x5a" * 4 for p in payloads)
    path.write_bytes(data[: len(data) - cut] if cut else data)
    return path


# --- the export index -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "index",
    [
        [],
        {"classes": CLASSES},
        {"shards": {}},
        {"classes": "covid-19", "shards": {}},
        {"classes": ["covid-19", 1], "shards": {}},
        {"classes": ["normal", "normal"], "shards": {}},
        {"classes": CLASSES, "shards": []},
    ],
)
def test_an_index_without_a_class_list_and_a_shard_mapping_is_refused(tmp_path: Path, index: object) -> None:
    with pytest.raises(DamagedExport, match=r"export again") as caught:
        _check_index(tmp_path / "export.json", index)
    assert str(tmp_path / "export.json") in str(caught.value)


@pytest.mark.parametrize(
    "entries",
    [
        "train-0.tar",
        5,
        None,
        {"file": "train-0.tar", "count": 1},
        ["train-0.tar"],
        [{"count": 3}],
        [{"file": 7, "count": 3}],
        [{"file": "../train-0.tar", "count": 3}],
        [{"file": "/etc/passwd", "count": 3}],
        [{"file": "train-0.tar"}],
        [{"file": "train-0.tar", "count": 0}],
        [{"file": "train-0.tar", "count": -1}],
        [{"file": "train-0.tar", "count": "3"}],
        [{"file": "train-0.tar", "count": True}],
        [{"file": "train-0.tar", "count": 3.0}],
        [{"file": "train-0.tar", "count": 3}, {"file": "train-1.tar", "count": 0}],
    ],
)
def test_a_shard_entry_must_be_a_file_inside_the_folder_with_a_count(tmp_path: Path, entries: object) -> None:
    with pytest.raises(DamagedExport, match=r"'train'.*not a file inside the folder with a count"):
        _check_index(tmp_path / "export.json", {"classes": CLASSES, "shards": {"val": [], "train": entries}})


def test_a_well_formed_index_is_accepted(tmp_path: Path) -> None:
    _check_index(
        tmp_path / "export.json",
        {"classes": CLASSES, "shards": {"train": [{"file": "sub/train-0.tar", "count": 1}], "val": []}},
    )


def test_a_missing_empty_or_cut_index_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"has no export.json"):
        resolve_shards(str(tmp_path), "train", "webdataset")
    for text in ("", '{"format": "webdataset", "classes": [', "\xff"):
        (tmp_path / "export.json").write_bytes(text.encode("latin-1"))
        with pytest.raises(DamagedExport, match=r"empty, cut or not JSON") as caught:
            resolve_shards(str(tmp_path), "train", "webdataset")
        assert str(tmp_path / "export.json") in str(caught.value)
    (tmp_path / "export.json").write_text(json.dumps({"format": "webdataset", "classes": CLASSES}))
    with pytest.raises(DamagedExport, match=r"not an export index") as caught:
        resolve_shards(str(tmp_path), "train", "webdataset")
    assert str(tmp_path / "export.json") in str(caught.value)


# --- WebDataset shards ----------------------------------------------------------------------


def test_shards_that_hold_what_the_index_declares_are_served_in_split_order(tmp_path: Path) -> None:
    _tar(tmp_path / "train-0.tar", [_sample("a", "train", 0), _sample("b", "train", 2)])
    _tar(tmp_path / "train-1.tar", [_sample("c", "train", 1)])
    _tar(tmp_path / "val-0.tar", [_sample("d", "val", 1)])
    shards = {
        "train": [{"file": "train-0.tar", "count": 2}, {"file": "train-1.tar", "count": 1}],
        "val": [{"file": "val-0.tar", "count": 1}],
    }
    _index(tmp_path, shards, counts={"train": 3, "val": 1})
    urls, counts, classes = resolve_shards(str(tmp_path), "train", "webdataset")
    assert urls == [os.fspath(tmp_path / "train-0.tar"), os.fspath(tmp_path / "train-1.tar")]
    assert counts == [2, 1] and classes == CLASSES
    urls, counts, _ = resolve_shards(str(tmp_path), None, "webdataset")
    assert [Path(u).name for u in urls] == ["train-0.tar", "train-1.tar", "val-0.tar"] and counts == [2, 1, 1]
    urls, counts, _ = resolve_shards(str(tmp_path), "val", "webdataset")
    assert [Path(u).name for u in urls] == ["val-0.tar"] and counts == [1]


def test_another_format_or_an_absent_split_is_refused_by_name(tmp_path: Path) -> None:
    _tar(tmp_path / "train-0.tar", [_sample("a", "train", 0)])
    _index(tmp_path, {"train": [{"file": "train-0.tar", "count": 1}]})
    with pytest.raises(ValueError, match=r"holds a 'webdataset' export; this loader reads 'tfrecord'"):
        resolve_shards(str(tmp_path), "train", "tfrecord")
    with pytest.raises(ValueError, match=r"has no 'test' shards \(splits: train\)"):
        resolve_shards(str(tmp_path), "test", "webdataset")
    _tar(tmp_path / "val-0.tar", [_sample("b", "val", 1)])
    _index(tmp_path, {"train": [{"file": "train-0.tar", "count": 1}], "val": [{"file": "val-0.tar", "count": 1}]})
    with pytest.raises(ValueError, match=r"has no 'test' shards \(splits: train, val\)$"):
        resolve_shards(str(tmp_path), "test", "webdataset")


@pytest.mark.parametrize("fmt", ["webdataset", "tfrecord"])
def test_the_loaders_shard_lookup_refuses_a_damaged_shard_of_either_format(tmp_path: Path, fmt: str) -> None:
    name = "train-0.tar" if fmt == "webdataset" else "train-0.tfrecord"
    if fmt == "webdataset":
        _tar(tmp_path / name, [_sample("a", "train", 0)])
    else:
        _tfrecord(tmp_path / name, [b"x"])
    _index(tmp_path, {"train": [{"file": name, "count": 2}]}, fmt=fmt)
    with pytest.raises(DamagedExport, match=rf"{name} holds 1 (samples|records), export.json declares 2"):
        resolve_shards(str(tmp_path), "train", fmt)


@pytest.mark.parametrize(
    ("samples", "count", "message"),
    [
        ([_sample("a", "train", 0)], 2, "holds 1 samples, export.json declares 2"),
        ([_sample("a", "train", 0), _sample("b", "train", 1), _sample("c", "train", 1)], 2, "holds 3 samples"),
        ([_sample("a", "train", 0), _sample("b", "test", 1)], 2, "sample b is a 'test' sample in a 'train' shard"),
        ([_sample("a", "train", 0), ("b", {"split": "train", "label": "normal"}, 3)], 2, "label index 3"),
        ([_sample("a", "train", 0), ("b", {"split": "train", "label": "normal"}, -1)], 2, "label index -1"),
        (
            [_sample("a", "train", 0), ("b", {"split": "train", "label": "normal"}, 0)],
            2,
            "label index 0 ('normal') but the export's classes are ['covid-19', 'normal', 'pneumonia']: "
            "shards of another export?",
        ),
        ([_sample("a", "train", 0), ("b", {"split": "train", "label": "normal"}, None)], 2, "no readable json/cls"),
        ([_sample("a", "train", 0), ("b", None, 1)], 2, "sample b has no readable json/cls"),
        ([_sample("a", "train", 0), ("b", ["train", "normal"], 1)], 2, "its json member is not a manifest row"),
        ([_sample("a", "train", 0), ("b", {"split": "train", "label": "normal"}, "one")], 2, "no readable"),
    ],
)
def test_a_shard_that_is_not_what_the_index_declares_is_refused(
    tmp_path: Path, samples: list, count: int, message: str
) -> None:
    _tar(tmp_path / "train-0.tar", samples)
    index = _index(tmp_path, {"train": [{"file": "train-0.tar", "count": count}]})
    exact = re.escape(message) + ("$" if message.endswith("?") else "")  # a whole sentence: to its end
    with pytest.raises(DamagedExport, match=exact) as caught:
        check_export(tmp_path, index, "webdataset")
    assert "train-0.tar" in str(caught.value)


def test_one_key_in_two_shards_is_refused_naming_both(tmp_path: Path) -> None:
    _tar(tmp_path / "train-0.tar", [_sample("a", "train", 0)])
    _tar(tmp_path / "val-0.tar", [_sample("a", "val", 0)])
    index = _index(
        tmp_path, {"train": [{"file": "train-0.tar", "count": 1}], "val": [{"file": "val-0.tar", "count": 1}]}
    )
    with pytest.raises(DamagedExport, match=r"val-0.tar: sample a is also in train-0.tar"):
        check_export(tmp_path, index, "webdataset")


def test_folders_in_a_tar_are_not_samples_and_json_and_cls_are_read(tmp_path: Path) -> None:
    path = tmp_path / "train-0.tar"
    with tarfile.open(path, "w") as tar:
        folder = tarfile.TarInfo("b")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)  # first: a folder is skipped, not the end of the shard
    with tarfile.open(path, "a") as tar:
        _key, record, label = _sample("a", "train", 2)
        for name, data in (("a.png", b"png"), ("a.mask.png", b"png"), ("a.json", json.dumps(record).encode())):
            info = tarfile.TarInfo(name)  # "a.mask.png": WebDataset keys end at the first dot
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("a.cls")
        info.size = 1
        tar.addfile(info, io.BytesIO(str(label).encode()))
    check_export(tmp_path, _index(tmp_path, {"train": [{"file": "train-0.tar", "count": 1}]}), "webdataset")
    with pytest.raises(DamagedExport, match=r"holds 1 samples, export.json declares 2"):
        check_export(tmp_path, _index(tmp_path, {"train": [{"file": "train-0.tar", "count": 2}]}), "webdataset")


def test_a_json_member_is_read_within_a_budget(tmp_path: Path) -> None:
    """A manifest row is a few hundred bytes; a member of megabytes is not read whole (bounded memory)."""
    big = {"split": "train", "label": "covid-19", "padding": " " * (3 << 19)}  # 1.5 MiB
    _tar(tmp_path / "train-0.tar", [("a", big, 0)])
    index = _index(tmp_path, {"train": [{"file": "train-0.tar", "count": 1}]})
    with pytest.raises(DamagedExport, match=r"sample a has no readable json/cls member"):
        check_export(tmp_path, index, "webdataset")
    small = {"split": "train", "label": "covid-19", "padding": " " * ((1 << 20) - 100)}  # just under 1 MiB
    _tar(tmp_path / "train-0.tar", [("a", small, 0)])
    check_export(tmp_path, index, "webdataset")


def test_a_missing_or_unreadable_shard_is_refused(tmp_path: Path) -> None:
    index = _index(tmp_path, {"train": [{"file": "train-0.tar", "count": 1}]})
    with pytest.raises(DamagedExport, match=r"train-0.tar is missing"):
        check_export(tmp_path, index, "webdataset")
    (tmp_path / "train-0.tar").write_bytes(b"not a tar at all" * 40)
    with pytest.raises(DamagedExport, match=r"train-0.tar is not a readable tar"):
        check_export(tmp_path, index, "webdataset")


def test_split_counts_must_add_up_to_what_the_index_declares(tmp_path: Path) -> None:
    _tar(tmp_path / "train-0.tar", [_sample("a", "train", 0), _sample("b", "train", 1)])
    shards = {"train": [{"file": "train-0.tar", "count": 2}]}
    check_export(tmp_path, _index(tmp_path, shards, counts={"train": 2}), "webdataset")
    check_export(tmp_path, _index(tmp_path, shards, counts={"val": 5}), "webdataset")  # another split: no claim
    with pytest.raises(DamagedExport, match=r"'train' shards add up to another count than 3"):
        check_export(tmp_path, _index(tmp_path, shards, counts={"train": 3}), "webdataset")


# --- TFRecord shards ------------------------------------------------------------------------


def test_tfrecord_framing_must_add_up_to_the_declared_count(tmp_path: Path) -> None:
    payloads = [b"x" * 5, b"", b"y" * 300]
    _tfrecord(tmp_path / "train-0.tfrecord", payloads)
    ok = _index(tmp_path, {"train": [{"file": "train-0.tfrecord", "count": 3}]}, fmt="tfrecord")
    check_export(tmp_path, ok, "tfrecord")
    urls, counts, _ = resolve_shards(str(tmp_path), "train", "tfrecord")
    assert [Path(u).name for u in urls] == ["train-0.tfrecord"] and counts == [3]
    for declared in (2, 4):
        index = _index(tmp_path, {"train": [{"file": "train-0.tfrecord", "count": declared}]}, fmt="tfrecord")
        with pytest.raises(DamagedExport, match=rf"holds 3 records, export.json declares {declared}"):
            check_export(tmp_path, index, "tfrecord")


@pytest.mark.parametrize("cut", [1, 4, 100, 300 + 8, 300 + 8 + 4 + 1])
def test_a_tfrecord_cut_inside_a_record_names_the_record(tmp_path: Path, cut: int) -> None:
    _tfrecord(tmp_path / "train-0.tfrecord", [b"x" * 5, b"y" * 300], cut=cut)
    index = _index(tmp_path, {"train": [{"file": "train-0.tfrecord", "count": 2}]}, fmt="tfrecord")
    with pytest.raises(DamagedExport, match=r"train-0.tfrecord: record 1 is cut"):
        check_export(tmp_path, index, "tfrecord")


def test_a_tfrecord_that_ends_exactly_after_a_record_is_complete(tmp_path: Path) -> None:
    """A record whose data + crc end on the last byte is whole (``> size``, not ``>=``)."""
    _tfrecord(tmp_path / "one.tfrecord", [b"z" * 17])
    check_export(tmp_path, _index(tmp_path, {"train": [{"file": "one.tfrecord", "count": 1}]}), "tfrecord")


# --- shard patterns -------------------------------------------------------------------------


def test_a_brace_pattern_expands_to_its_urls_without_counts(tmp_path: Path) -> None:
    urls, counts, classes = resolve_shards(str(tmp_path / "train-{000..002}.tar"), "train", "webdataset")
    assert urls == [str(tmp_path / f"train-00{i}.tar") for i in range(3)]
    assert counts is None and classes is None
    assert resolve_shards("a.tar::b.tar", None, "webdataset")[0] == ["a.tar", "b.tar"]
    for pattern in ("a.tar::", "::"):
        with pytest.raises(ValueError, match=r"has an empty part"):
            resolve_shards(pattern, "train", "webdataset")


# --- who reads which shard ------------------------------------------------------------------


@pytest.mark.parametrize(("count", "world", "workers"), [(1, 1, 1), (7, 2, 3), (12, 3, 2), (5, 4, 4)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_shard_is_read_once_per_epoch_by_one_worker_of_one_rank(
    count: int, world: int, workers: int, shuffle: bool
) -> None:
    for epoch in range(3):
        layout = plan(count, seed=11, epoch=epoch, shuffle=shuffle, world=world, workers=workers)
        assert len(layout) == world and all(len(rank) == workers for rank in layout)
        read = [s for rank in layout for worker in rank for s in worker]
        assert sorted(read) == list(range(count))
        per_rank = [sum(len(w) for w in rank) for rank in layout]
        assert max(per_rank) - min(per_rank) <= 1  # ranks get shards round-robin


def test_without_shuffle_shards_go_round_robin_to_ranks_then_workers() -> None:
    assert plan(7, seed=3, epoch=5, shuffle=False, world=2, workers=2) == [[[0, 4], [2, 6]], [[1, 5], [3]]]


def test_the_shuffled_order_follows_seed_and_epoch_and_nothing_else() -> None:
    def order(seed: int, epoch: int) -> list[int]:
        return [s for rank in plan(40, seed, epoch, True, 1, 1) for worker in rank for s in worker]

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != list(range(40))
    assert len({tuple(order(1, e)) for e in range(5)}) == 5
    assert order(1, 0) != order(2, 0)
    layout = plan(40, 1, 3, True, world=2, workers=1)
    assert [s for s in order(1, 3)[0::2]] == layout[0][0]  # ranks slice the one shuffled order


def test_mix_is_one_stable_63_bit_seed_of_all_its_numbers() -> None:
    values = {mix(a, b, c) for a in range(4) for b in range(4) for c in (0, 0x5EED)}
    assert len(values) == 32
    assert all(0 <= v < 2**63 for v in values)
    assert max(values) >= 2**62  # all 63 bits are used, not a shifted part of them
    assert mix(5, 6) != mix(6, 5)
    assert mix(-1) == mix(2**32 - 1)  # numbers are taken modulo 2**32 (negatives allowed)
    code = "from covid19_images.loaders.shards import mix; print(mix(7, 8, 9))"
    assert int(_in_another_process(code)) == mix(7, 8, 9)  # another process agrees: no hash() salt


def test_budgets_give_every_rank_the_same_samples_per_worker() -> None:
    counts = [5, 3, 4, 2, 7]
    layout = [[[0, 2], [4]], [[1], [3]]]  # rank 0: workers read 9 and 7; rank 1: 3 and 2
    assert budgets(layout, counts, None) is None
    assert budgets(layout, counts, "drop") == [3, 2]
    assert budgets(layout, counts, "pad") == [9, 7]
    assert budgets([[[0], []]], counts, "drop") == [5, 0]


# --- options that do not apply to shards ----------------------------------------------------


@dataclass
class _Opts:
    labels: object = None
    sources: object = None
    views: object = None
    licenses: object = None
    classes: object = None
    cache: bool = False


def test_row_filters_and_cache_are_refused_with_shards_by_name() -> None:
    check_stream_options(_Opts())
    for name in ("labels", "sources", "views", "licenses", "classes"):
        with pytest.raises(ValueError, match=rf"^{name} cannot be applied to shards="):
            check_stream_options(_Opts(**{name: ("x",)}))
    with pytest.raises(ValueError, match=r"^cache cannot be applied"):
        check_stream_options(_Opts(cache=True))
    with pytest.raises(ValueError, match=r"^labels, views, cache cannot be applied") as caught:
        check_stream_options(_Opts(labels=("x",), views=("PA",), cache=True))
    assert str(caught.value).endswith(
        "(covid19-images export --sources/--views/--labels/--licenses); leave them out or export again"
    )


# --- augmentation draw keys -----------------------------------------------------------------


def test_a_draw_seed_depends_on_seed_epoch_and_item_and_is_a_63_bit_number() -> None:
    keys = [item_key(f"img-{i}", f) for i in range(50) for f in (0, 1)]
    assert len(set(keys)) == 100
    assert item_key("a", 1) != item_key("a", 2) and item_key("a:1", 0) != item_key("a", 10)
    seeds = {(s, e, k): draw_seed(s, e, k) for s in (0, 1) for e in (0, 1) for k in keys}
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= v < 2**63 for v in seeds.values())
    assert max(seeds.values()) >= 2**62  # 63 bits, not fewer
    assert draw_seed(1, 2, "k") == draw_seed(True, 2.0, "k")  # seed and epoch are taken as integers
    code = "from covid19_images.loaders.augment import draw_seed; print(draw_seed(3, 4, 'x:0'))"
    assert int(_in_another_process(code)) == draw_seed(3, 4, "x:0")


def test_an_item_key_names_the_frame_as_a_whole_number() -> None:
    assert item_key("a", 3) == item_key("a", 3.0) == item_key("a", True + 2)
    assert item_key("a", 0).startswith("a") and item_key("a", 0).endswith("0")
