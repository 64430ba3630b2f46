"""What changed between two manifests, per source: added, removed, relabelled, split-moved.

Computed with Arrow's hash lookup of the old ``image_id``s and column comparisons (no per-row
lookups): comparing two 200,000-row manifests costs about 0.12 s (the outer merge it replaces
took 0.43 s; docs/benchmarks.md, round eight).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - SourceChange is imported where pandas is not (an unchanged sync)
    import pandas as pd


@dataclass
class SourceChange:
    source: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    relabelled: list[tuple[str, str, str]] = field(default_factory=list)
    moved: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.relabelled or self.moved)


_COLUMNS = ["image_id", "source", "path", "label", "split"]


def diff_manifests(old: pd.DataFrame | None, new: pd.DataFrame) -> dict[str, SourceChange]:
    """Per source: image paths added and removed, (path, old, new) relabelled and split-moved.

    Rows are matched on ``image_id`` by Arrow's hash lookup (``pyarrow.compute.index_in``) and
    their labels and splits compared as Arrow columns, so no unchanged row becomes a Python object;
    only the rows that differ are visited one by one. A manifest's ids are unique (one per source
    and path) and its cells are text; frames where ids repeat or a cell is missing are matched by
    an outer merge instead (:func:`_merged_changes`, every pairing of a repeated id counted).
    """
    import pandas as pd

    before = pd.DataFrame(columns=_COLUMNS) if old is None else old[_COLUMNS]
    try:
        return _sorted(_indexed_changes(before, new))
    except _NotIndexable:
        return _sorted(_merged_changes(before, new))


class _NotIndexable(Exception):
    """The two frames cannot be matched by a hash index of unique ids."""


def _text(column: pd.Series):
    """The column as an Arrow string array holding what ``column.astype(str)`` holds.

    A column of Python strings converts directly (``astype(str)`` leaves a string as it is);
    anything else goes through ``astype(str)`` first. A missing cell makes the frames
    :class:`_NotIndexable`: the merge compares it as pandas does.
    """
    import pandas as pd
    import pyarrow as pa

    array = None
    if not isinstance(column.dtype, pd.StringDtype):
        try:
            array = pa.array(column.to_numpy(dtype=object), type=pa.string())
        except pa.ArrowException:  # a cell that is not a string: pandas spells it out below
            column = column.astype(str)
    if array is None or array.null_count:
        try:
            array = pa.array(column.array)
        except pa.ArrowException as err:
            raise _NotIndexable(str(err)) from err
    if array.null_count:
        raise _NotIndexable("a missing cell")
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.string())


def _indexed_changes(before: pd.DataFrame, new: pd.DataFrame) -> dict[str, SourceChange]:
    import numpy as np
    import pyarrow.compute as pc

    was = {c: _text(before[c]) for c in _COLUMNS}
    now = {c: _text(new[c]) for c in _COLUMNS}
    for columns in (was, now):
        if pc.count_distinct(columns["image_id"]).as_py() != len(columns["image_id"]):
            raise _NotIndexable("an image_id repeats")
    at = pc.index_in(now["image_id"], value_set=was["image_id"])  # each new row's old row; null: added
    added = at.is_null().to_numpy(zero_copy_only=False)
    kept = np.flatnonzero(~added)
    old_rows = at.drop_null().to_numpy().astype(np.int64)
    removed = np.ones(len(was["image_id"]), dtype=bool)
    removed[old_rows] = False
    changes: dict[str, SourceChange] = {}

    def change(source: str) -> SourceChange:
        return changes.setdefault(source, SourceChange(source))

    def cells(array, rows) -> list[str]:
        return array.take(rows).to_pylist()

    added_rows = np.flatnonzero(added)
    for source, path in zip(cells(now["source"], added_rows), cells(now["path"], added_rows), strict=True):
        change(source).added.append(path)
    removed_rows = np.flatnonzero(removed)
    for source, path in zip(cells(was["source"], removed_rows), cells(was["path"], removed_rows), strict=True):
        change(source).removed.append(path)
    for column, target in (("label", "relabelled"), ("split", "moved")):
        before_values, after_values = was[column].take(old_rows), now[column].take(kept)
        differ = np.flatnonzero(pc.not_equal(before_values, after_values).to_numpy(zero_copy_only=False))
        rows = kept[differ]
        triples = zip(cells(now["path"], rows), cells(before_values, differ), cells(after_values, differ), strict=True)
        for source, triple in zip(cells(now["source"], rows), triples, strict=True):
            getattr(change(source), target).append(triple)
    return changes


def _merged_changes(before: pd.DataFrame, new: pd.DataFrame) -> dict[str, SourceChange]:
    """:func:`diff_manifests` by an outer merge on ``image_id``: frames whose ids repeat."""
    joined = before.astype(str).merge(
        new[_COLUMNS].astype(str), on="image_id", how="outer", suffixes=("_old", "_new"), indicator=True
    )
    changes: dict[str, SourceChange] = {}

    def change(source: str) -> SourceChange:
        return changes.setdefault(source, SourceChange(source))

    added = joined[joined["_merge"] == "right_only"]
    for source, paths in added.groupby("source_new", sort=False)["path_new"]:
        change(str(source)).added.extend(paths.tolist())
    removed = joined[joined["_merge"] == "left_only"]
    for source, paths in removed.groupby("source_old", sort=False)["path_old"]:
        change(str(source)).removed.extend(paths.tolist())
    common = joined[joined["_merge"] == "both"]
    for column, target in (("label", "relabelled"), ("split", "moved")):
        differ = common[common[f"{column}_old"] != common[f"{column}_new"]]
        for source, rows in differ.groupby("source_new", sort=False):
            triples = zip(rows["path_new"], rows[f"{column}_old"], rows[f"{column}_new"], strict=True)
            getattr(change(str(source)), target).extend(triples)
    return changes


def _sorted(changes: dict[str, SourceChange]) -> dict[str, SourceChange]:
    """Each source's lists in order, the sources by name."""
    for item in changes.values():
        item.added.sort()
        item.removed.sort()
        item.relabelled.sort()
        item.moved.sort()
    return dict(sorted(changes.items()))
