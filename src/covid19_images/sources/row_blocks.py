"""A metadata table replayed a block of rows at a time: unchanged rows cost no per-row digest.

:func:`replay_rows` used to digest every row (its cells joined and hashed, 4 µs) before it could
look the row up in the memo, so an upstream that adds one row to a 50,000-row table still paid
for 50,000 digests, 50,000 row tuples and 50,000 :class:`~covid19_images.sources.row_memo.MemoRow`
objects. Here the table is cut into blocks and each block is digested whole from its columns
(each column's cells joined, a few C calls per block); a block whose digest the memo
knows gives the digests of its rows without computing them, and goes to the builder as one
:class:`MemoBlock` (:mod:`covid19_images.manifest.source_build` carries its finished rows from the
previous manifest in one step when every one of them can be carried, and row by row otherwise).

Where blocks end depends on the rows, not on their positions (content-defined chunking, as
rsync and backup tools cut files): a row ends a block when a hash of its first cell has its low
bits zero, about one row in :data:`BLOCK_ROWS`, with a block never longer than :data:`MAX_BLOCK`.
So a row inserted, removed or changed anywhere moves the one or two blocks around it, and every
other block is found again. A block digest covers what a row digest covers (the function, the
header, every cell but ``_row``, the arguments), so a known block's rows are exactly the rows
whose digests it lists; each replayed row still has its file questions checked, as one by one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from covid19_images.sources.row_memo import (
    MemoRow,
    Record,
    RowMemo,
    SourceContext,
    _cells_digest,
    _header,
    _replay,
    _replay_problems,
    _run,
    _still_holds,
    report_recorded,
)

if TYPE_CHECKING:  # pragma: no cover - NumPy is imported when a table is replayed: loading the registry needs none
    import numpy as np

#: About one row in this many ends a block (a power of two: the hash's low bits are compared).
BLOCK_ROWS = 256
#: No block is longer (a run of rows none of whose hashes ends a block is cut here).
MAX_BLOCK = 4 * BLOCK_ROWS
#: Joins a block's cells of one column for its digest (the unit separator, which metadata cells
#: rarely hold; a column of a block where one does is digested with its cells' lengths).
SEPARATOR = "\x1f"


@dataclass(slots=True)
class MemoBlock:
    """Consecutive replayed rows of a known block, as :func:`replay_rows` hands them to a builder
    that carries rows (``memo.bulk``): their digests, records and current ``<file> line N``. Their
    problems are already reported."""

    digests: tuple[bytes, ...]
    records: list[Record]
    wheres: list[str]

    def rows(self) -> Iterator[MemoRow]:
        """The block as the :class:`MemoRow` rows :func:`replay_rows` would give one at a time."""
        for digest, record, where in zip(self.digests, self.records, self.wheres, strict=True):
            yield MemoRow(digest, where, record=record)


def block_bounds(first: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` of each block of rows, cut after the rows whose first cell ``first`` hashes
    with its low bits zero, and every :data:`MAX_BLOCK` rows within a longer run."""
    import numpy as np
    import pandas as pd

    count = len(first)
    if not count:
        return []
    # SipHash with pandas' fixed key, the same cut in every process (not factorised first: 4x faster)
    hashes = pd.util.hash_array(first, categorize=False)
    ends = (np.flatnonzero((hashes & np.uint64(BLOCK_ROWS - 1)) == 0) + 1).tolist()
    if not ends or ends[-1] != count:
        ends.append(count)
    bounds: list[tuple[int, int]] = []
    start = 0
    for end in ends:
        while end - start > MAX_BLOCK:
            bounds.append((start, start + MAX_BLOCK))
            start += MAX_BLOCK
        bounds.append((start, end))
        start = end
    return bounds


def block_digests(columns: list[np.ndarray], bounds: list[tuple[int, int]], before: str, after: str) -> list[bytes]:
    """SHA-256 of each block: ``before`` (function and header), the row count, then each column's
    cells over the block's rows, then ``after`` (the arguments).

    A column's cells go in joined by :data:`SEPARATOR` when none of them holds it (the joined text
    then has exactly one fewer separators than cells, and gives back every cell), and otherwise
    with their lengths (tagged apart), so two blocks share a digest only when every cell is the
    same. Joining is one C call per column and block; the lengths cost a call per cell (3x slower).
    """
    import numpy as np

    head, tail = before.encode("utf-8", "surrogatepass"), after.encode("utf-8", "surrogatepass")
    digests = []
    for start, end in bounds:
        block = hashlib.sha256(head)
        block.update((end - start).to_bytes(8, "little"))
        for values in columns:
            cells = values[start:end]
            joined = SEPARATOR.join(cells)
            if joined.count(SEPARATOR) == end - start - 1:
                block.update(b"S")
            else:
                block.update(b"L" + np.fromiter(map(len, cells), dtype=np.int64, count=end - start).tobytes())
            block.update(joined.encode("utf-8", "surrogatepass"))
        block.update(tail)
        digests.append(block.digest())
    return digests


def block_holds(ctx: SourceContext, records: list[Record]) -> bool:
    """True when every file question the block's rows asked gets the same answer in this checkout
    (:func:`~covid19_images.sources.row_memo._still_holds` for the rows at once, as set operations)."""
    questions = [asked for record in records for asked in record[2]]
    present = [question for question, answer in questions if answer is True]
    absent = [question for question, answer in questions if answer is False]
    if len(present) + len(absent) != len(questions):  # "which files have this name?" questions
        named = [(question, answer) for question, answer in questions if not isinstance(answer, bool)]
        if any(ctx.files_named(question[1:]) != answer for question, answer in named):
            return False
    files = ctx.file_set
    return files.issuperset(present) and files.isdisjoint(absent)


def replay_rows(ctx: SourceContext, memo: RowMemo, frame, produce: Callable, args: tuple) -> Iterator:
    """:func:`~covid19_images.sources.row_memo.replay_or_run` over every row of ``frame`` (a table
    whose cells are strings, ``_row`` included), in order.

    With ``memo.bulk`` it yields a :class:`MemoBlock` for each block the memo knows whose rows all
    replay, and one :class:`MemoRow` per row of any other block; without, entries."""
    names = tuple(frame.columns)
    cells_at = [i for i, name in enumerate(names) if name != "_row"]
    where_at = names.index("_row") if "_row" in names else None
    before, after = _header(produce, names) + "\x1e", f"\x1e{args!r}"
    columns = [frame.iloc[:, i].to_numpy(dtype=object) for i in range(len(names))]
    cells = [columns[i] for i in cells_at]
    wheres = columns[where_at].tolist() if where_at is not None else [""] * len(frame)
    bounds = block_bounds(cells[0]) if cells else [(0, len(frame))] if len(frame) else []
    try:
        digests: list[bytes | None] = list(block_digests(cells, bounds, before, after))
    except TypeError:  # a cell that is not text: no blocks, every row digested alone (as it requires text too)
        digests = [None] * len(bounds)
    stored = memo.stored
    for (start, end), block in zip(bounds, digests, strict=True):
        known = memo.blocks.get(block) if block is not None and memo.bulk else None
        if known is not None and len(known) == end - start:
            records = [stored.get(digest) for digest in known]
            if None not in records and block_holds(ctx, records):
                memo.used.update(zip(known, records, strict=True))
                memo.replayed += len(known)
                for record, where in zip(records, wheres[start:end], strict=True):
                    report_recorded(ctx, record, where)
                memo.blocks_used[block] = known
                memo.blocks_replayed += 1
                yield MemoBlock(known, records, wheres[start:end])
                continue
        row_digests: list[bytes] = []
        for at, values in enumerate(zip(*(column[start:end] for column in columns), strict=True), start=start):
            digest = _cells_digest(before, [values[i] for i in cells_at], after)
            row_digests.append(digest)
            where = wheres[at]
            record = stored.get(digest)
            if record is not None and _still_holds(record, ctx):
                if memo.bulk:
                    _replay_problems(ctx, memo, digest, record, where)
                    yield MemoRow(digest, where, record=record)
                else:
                    yield from _replay(ctx, memo, digest, record, where)
            elif memo.bulk:
                computed = list(_run(ctx, memo, digest, dict(zip(names, values, strict=True)), produce, args))
                yield MemoRow(digest, where, entries=computed)
            else:
                yield from _run(ctx, memo, digest, dict(zip(names, values, strict=True)), produce, args)
        if block is not None and all(digest in memo.used for digest in row_digests):
            memo.blocks_used[block] = tuple(row_digests)
