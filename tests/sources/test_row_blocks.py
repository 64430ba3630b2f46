"""A metadata table replayed a block at a time: a block is known again only when every cell of it
is the same, its cuts follow the rows (an inserted row moves only the blocks around it), and a
known block whose rows' file answers moved is replayed row by row. A real SourceContext over real
folders, the memo saved and loaded from disk as the builder does; the builder's side (carrying a
block's finished rows) is proven against ``sync --rebuild`` in ``tests/sync/test_sync_row_memo.py``."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from covid19_images.core.schema import Entry
from covid19_images.sources import row_blocks
from covid19_images.sources.parsing import SourceContext, list_files
from covid19_images.sources.row_blocks import MemoBlock, block_bounds, block_digests
from covid19_images.sources.row_memo import MemoRow, RowMemo, entry_of
from covid19_images.sources.spec import SourceSpec

CALLS: list[str] = []


def _image_of(ctx: SourceContext, row: dict[str, str], folder: str):
    CALLS.append(row["file"])
    relative = f"{folder}/{row['file']}"
    if ctx.require(relative, row["_row"], "meta.csv"):
        yield Entry(path=relative, modality="xray", finding=row["finding"], row=row["_row"])


def _names(count: int) -> list[str]:
    return [f"{i:05d}.png" for i in range(count)]


def _checkout(tmp_path: Path, count: int, folders: int = 0) -> tuple[Path, Path, list[str], list[str]]:
    """(checkout, cache folder, image names, their ``meta.csv`` rows): ``count`` images in ``images/``,
    or spread over ``batch0/``... ``batch{folders - 1}/`` (found by name only)."""
    data, names = tmp_path / "src", _names(count)
    for at, name in enumerate(names):
        folder = data / (f"batch{at % folders}" if folders else "images")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    return data, tmp_path / "cache", names, [f"{name},covid" for name in names]


def _parse(
    directory: Path, cache: Path, lines: list[str], produce=_image_of, args: tuple = ("images",)
) -> tuple[list, list[tuple[str, str]], RowMemo]:
    """(the items a carrying builder gets, the problems, the memo) of one build over ``lines``."""
    (directory / "meta.csv").write_text("file,finding\n" + "".join(f"{line}\n" for line in lines))
    memo = RowMemo.load(cache, "demo", "key-1")
    memo.bulk = True
    ctx = SourceContext(
        SourceSpec("demo", "", "main", "demo", ("xray",), "CC-BY-4.0"), directory, list_files(directory), memo=memo
    )
    CALLS.clear()
    items = list(ctx.memoised_rows(ctx.read_csv("meta.csv"), produce, *args))
    memo.save(cache, "demo")
    return items, [(p.message, p.row) for p in ctx.problems], memo


def _entries(items: list) -> list[tuple[str, str, str]]:
    """Every entry the items stand for, as (path, finding, row) in order."""
    rows = [row for item in items for row in (item.rows() if isinstance(item, MemoBlock) else [item])]
    found = []
    for row in rows:
        assert isinstance(row, MemoRow)
        entries = row.entries if row.record is None else [entry_of(v, row.where) for v in row.values()]
        found += [(e.path, e.finding, e.row) for e in entries]
    return found


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of about 4 rows (at most 16), so a table of a hundred rows has many."""
    monkeypatch.setattr(row_blocks, "BLOCK_ROWS", 4)
    monkeypatch.setattr(row_blocks, "MAX_BLOCK", 16)


def test_blocks_tile_the_table_and_an_inserted_row_moves_only_its_own_block() -> None:
    names = np.array(_names(20_000), dtype=object)
    bounds = block_bounds(names)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(names)
    assert all(a[1] == b[0] for a, b in pairwise(bounds))
    assert all(0 < end - start <= row_blocks.MAX_BLOCK for start, end in bounds)
    assert 20_000 / row_blocks.BLOCK_ROWS / 3 < len(bounds) < 20_000 / row_blocks.BLOCK_ROWS * 3
    inserted = np.insert(names, 10_000, "new.png")
    before = {tuple(names[s:e]) for s, e in bounds}
    after = {tuple(inserted[s:e]) for s, e in block_bounds(inserted)}
    assert len(after - before) <= 2  # the block holding the new row (and, if it ends one, the next)
    assert len(before - after) <= 2


def test_short_tables_and_runs_without_a_cut_are_tiled_without_empty_blocks() -> None:
    assert block_bounds(np.array([], dtype=object)) == []
    assert block_bounds(np.array(["only.png"], dtype=object)) == [(0, 1)]
    same = np.array(["x"] * (3 * row_blocks.MAX_BLOCK), dtype=object)  # one value: one cut for all, or none
    bounds = block_bounds(same)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(same)
    assert all(0 < end - start <= row_blocks.MAX_BLOCK for start, end in bounds)
    assert all(a[1] == b[0] for a, b in pairwise(bounds))
    names = np.array(_names(5_000), dtype=object)
    ends = {end for _start, end in block_bounds(names)}
    last = next(n for n in range(1, len(names)) if n in ends)  # a table that ends on a cut row
    assert block_bounds(names[:last]) == [b for b in block_bounds(names) if b[1] <= last]


def test_a_block_digest_covers_every_cell_and_where_each_ends() -> None:
    def digest(*columns: list[str]) -> bytes:
        arrays = [np.array(c, dtype=object) for c in columns]
        return block_digests(arrays, [(0, len(arrays[0]))], "f\x1eheader\x1e", "\x1eargs")[0]

    same = digest(["ab", "c"], ["x", "y"])
    assert same == digest(["ab", "c"], ["x", "y"])
    assert same != digest(["a", "bc"], ["x", "y"])  # the same text, cut elsewhere
    assert same != digest(["ab", "c"], ["x", "z"])
    assert same != digest(["x", "y"], ["ab", "c"])
    # text that is not valid Unicode (a lone surrogate) is digested too, and told apart
    assert digest(["\udc80", "c"], ["x", "y"]) != digest(["\udc81", "c"], ["x", "y"])
    # cells that hold the separator the cells are joined with: told apart by their lengths
    assert digest(["a\x1fb", "c"], ["x", "y"]) != digest(["a", "b\x1fc"], ["x", "y"])
    assert digest(["a\x1fb", "c"], ["x", "y"]) == digest(["a\x1fb", "c"], ["x", "y"])
    assert same != block_digests([np.array(["ab", "c"], dtype=object)] * 2, [(0, 2)], "f\x1eheader\x1e", "\x1eother")[0]


def test_known_blocks_replay_whole_and_a_changed_block_row_by_row(tmp_path: Path, small_blocks: None) -> None:
    data, cache, names, rows = _checkout(tmp_path, 100)
    items, _problems, first = _parse(data, cache, rows)
    assert first.blocks_replayed == 0 and len(CALLS) == 100 and all(isinstance(i, MemoRow) for i in items)
    expected = _entries(items)

    items, _problems, memo = _parse(data, cache, rows)
    assert CALLS == [] and memo.blocks_replayed == len(first.blocks_used) > 10
    assert all(isinstance(i, MemoBlock) for i in items) and _entries(items) == expected

    # one cell changed: that row is computed; the rows of its block are replayed one by one
    changed = [*rows[:50], f"{names[50]},normal", *rows[51:]]
    items, _problems, memo = _parse(data, cache, changed)
    assert [names[50]] == CALLS
    single = [i for i in items if isinstance(i, MemoRow)]
    assert 1 <= len(single) <= 2 * row_blocks.MAX_BLOCK and memo.blocks_replayed >= len(first.blocks_used) - 2
    assert _entries(items) == [*expected[:50], (f"images/{names[50]}", "normal", "meta.csv line 52"), *expected[51:]]


def test_a_known_block_whose_file_answer_moved_is_not_replayed_whole(tmp_path: Path, small_blocks: None) -> None:
    data, cache, names, rows = _checkout(tmp_path, 60)
    _parse(data, cache, rows)
    (data / "images" / names[30]).unlink()
    items, problems, _memo = _parse(data, cache, rows)
    assert [names[30]] == CALLS
    assert problems == [(f"metadata points at images/{names[30]}, which is not in the checkout", "meta.csv line 32")]
    assert (f"images/{names[30]}", "covid", "meta.csv line 32") not in _entries(items)
    assert len(_entries(items)) == 59
    (data / "images" / names[30]).write_bytes(b"x")  # and back: the answer "absent" no longer holds
    items, problems, _memo = _parse(data, cache, rows)
    assert problems == [] and len(_entries(items)) == 60
    assert [names[30]] == CALLS


def test_blocks_survive_a_delta_save_and_a_new_base(tmp_path: Path, small_blocks: None) -> None:
    data, cache, _, rows = _checkout(tmp_path, 200)
    _parse(data, cache, rows)
    _items, _problems, memo = _parse(data, cache, [*rows, "new.png,covid"])  # a few rows computed: a delta
    assert (cache / "rows" / "demo.delta.pickle").exists()
    loaded = RowMemo.load(cache, "demo", "key-1")
    assert loaded.blocks == memo.blocks_used and loaded.blocks != loaded.base_blocks
    _items, _problems, memo = _parse(data, cache, [*rows, "new.png,covid"])
    assert CALLS == [] and memo.blocks_replayed == len(memo.blocks_used)


def _image_by_name(ctx: SourceContext, row: dict[str, str]):
    CALLS.append(row["file"])
    found = ctx.files_named(row["file"])
    if len(found) == 1:
        yield Entry(path=found[0], modality="xray", finding=row["finding"], row=row["_row"])


def test_a_known_block_whose_image_took_a_second_name_is_not_replayed_whole(tmp_path: Path, small_blocks: None) -> None:
    """A row that found its image by name depends on every file of that name: a second file of
    the name anywhere in the checkout makes its block go row by row, and the row is computed."""
    data, cache, names, rows = _checkout(tmp_path, 40, folders=3)

    _parse(data, cache, rows, _image_by_name, ())
    items, _problems, memo = _parse(data, cache, rows, _image_by_name, ())
    assert CALLS == [] and all(isinstance(i, MemoBlock) for i in items)
    (data / "copy").mkdir()
    (data / "copy" / names[20]).write_bytes(b"x")
    items, _problems, memo = _parse(data, cache, rows, _image_by_name, ())
    assert [names[20]] == CALLS
    assert len(_entries(items)) == 39 and memo.blocks_replayed >= 1
