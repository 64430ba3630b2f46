"""Reading and writing the manifest files: atomic writes, and a fast read of the record.

``manifests/manifest.csv`` is the format of record. Reading it goes through pandas' pyarrow
CSV reader (multi-threaded C++), which reads 200,000 rows in a fraction of a second; the
values come back exactly as the C engine's ``dtype=str`` read gives them (every column text,
blanks ``""``), which tests/manifest/test_incremental.py checks.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from covid19_images.core import atomic
from covid19_images.core.schema import MANIFEST_COLUMNS, PROBLEM_COLUMNS, Problem
from covid19_images.manifest import integrity
from covid19_images.manifest.csv_text import frame_csv_bytes

if TYPE_CHECKING:  # pragma: no cover - pandas is imported where a frame is made: sync's lock and recovery need none
    import pandas as pd

MANIFEST_FILE = "manifests/manifest.csv"
PROBLEMS_FILE = "manifests/problems.csv"
ANNOTATIONS_FILE = "manifests/annotations.csv"
_TEMPORARY_OF = (MANIFEST_FILE, PROBLEMS_FILE, ANNOTATIONS_FILE)


def empty_manifest() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=object) for c in MANIFEST_COLUMNS})


def text_dtype() -> pd.StringDtype:
    """The type of every manifest column in memory: text held by Arrow, blanks as ``""``.

    A manifest read from disk has it, and a build keeps its rows in it from the concatenation
    of its sources to the written bytes: turning 200,000 rows of 26 columns into Python strings
    cost 0.4 s in the concatenation alone, and the CSV writer turned them back (docs/benchmarks.md,
    round eight).
    """
    import pandas as pd

    return pd.StringDtype("pyarrow", na_value=float("nan"))


def _read_strings(data: bytes) -> pd.DataFrame:
    """Every cell as text (``""`` for blank), exactly what ``read_csv(dtype=str, keep_default_na=False)`` gives.

    pyarrow's multi-threaded CSV reader does the parsing (five to ten times faster than the C
    engine); a file it cannot take (odd quoting, a ragged row) falls back to the C engine,
    which raises the errors callers already handle.
    """
    import pandas as pd

    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        end = data.find(b"\n")  # the header line only (split would copy the whole file once more)
        header = next(csv.reader([(data if end < 0 else data[:end]).decode("utf-8")]))
        table = pa_csv.read_csv(
            pa.BufferReader(data),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
            ),
        )
        text = text_dtype()
        # each column wraps the reader's chunks as they are (Table.to_pandas took 5 times as long
        # at 200,000 rows); a header naming a column twice gives fewer columns, so the C engine
        frame = pd.DataFrame({name: pd.array(table.column(name), dtype=text) for name in table.column_names})
        if list(frame.columns) == header:
            return frame
    except Exception:  # noqa: BLE001 - the C engine below gives the reference answer and error
        pass
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")


def read_manifest(root: Path, *, missing_record_ok: bool = False) -> pd.DataFrame | None:
    """The manifest as strings (``""`` for blank), or None if there is none yet.

    ``missing_record_ok`` is for sync (which rebuilds the file) and ``status`` (which counts
    rows): every other reader refuses a manifest without its integrity record.
    """
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        return None
    with open(path, "rb") as handle:
        identity = integrity.settled_identity(os.fstat(handle.fileno()), time.time_ns())
        data = handle.read()
    # DamagedManifest (a ValueError) naming the file: conflict markers, cut rows
    digest = integrity.check(path, data, missing_ok=missing_record_ok)
    frame = manifest_from_bytes(data)
    if digest is not None:
        frame.attrs[MANIFEST_SHA256] = digest  # the bytes this frame was read from (loaders' ManifestStamp)
        if identity is not None:
            frame.attrs[MANIFEST_IDENTITY] = identity  # the file in that state (integrity.write_record)
    return frame


#: ``DataFrame.attrs`` key of :func:`read_manifest`'s result: the SHA-256 of the bytes it was read from
MANIFEST_SHA256 = "manifest_sha256"
#: ``DataFrame.attrs`` key of :func:`read_manifest`'s result: :func:`~covid19_images.manifest.integrity.file_identity`
#: of the file when those bytes were read
MANIFEST_IDENTITY = "manifest_identity"


def manifest_from_bytes(data: bytes) -> pd.DataFrame:
    """A checked manifest's bytes as the frame :func:`read_manifest` returns (columns in schema order)."""

    frame = _read_strings(data)
    for column in MANIFEST_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    return frame[list(MANIFEST_COLUMNS)]


def write_atomic(path: Path, data: bytes) -> None:
    """:func:`covid19_images.core.atomic.write_atomic` with the ``write.*`` crash-test checkpoints."""
    atomic.write_atomic(path, data, fault_points="write")


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Delete unfinished ``write_atomic`` temporaries of the manifest files (call with the sync lock held)."""
    removed: list[Path] = []
    for relative in _TEMPORARY_OF:
        target = Path(root) / relative
        if not target.parent.is_dir():
            continue
        for leftover in target.parent.glob(f".{target.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def manifest_bytes(frame: pd.DataFrame) -> bytes:
    """The manifest file: schema columns, rows by source and path, pandas' CSV (written on whole columns)."""
    return frame_csv_bytes(in_manifest_order(frame[list(MANIFEST_COLUMNS)]))


def rows_at(frame: pd.DataFrame, positions) -> pd.DataFrame:
    """``frame.iloc[positions]``, as one slice when the positions run on one by one.

    A slice shares the frame's Arrow buffers; gathering copies every cell (0.08-0.45 s for
    200,000 rows of a manifest, the first copy faulting its memory in). Manifests keep a source's
    rows together and carried rows in order, so the slice is the common case.
    """
    import numpy as np

    at = np.asarray(positions, dtype=np.int64)
    if len(at) and at[-1] - at[0] == len(at) - 1 and bool((np.diff(at) == 1).all()):
        return frame.iloc[int(at[0]) : int(at[-1]) + 1]
    return frame.iloc[at]


#: The manifest's row order: by source, then by path.
ORDER = ["source", "path"]


def in_manifest_order(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s rows by source and path (a stable sort): ``frame`` itself when they already are.

    A build sorts its manifest and the writer promises the order again, so a sync sorted 200,000
    rows twice; sorting rows already in order still costs 0.04-0.2 s each time, where checking
    each row against the next costs 0.003 s (docs/benchmarks.md, round ten).
    """
    if _ordered(frame):
        return frame
    return frame.sort_values(ORDER, kind="mergesort")


def _ordered(frame: pd.DataFrame) -> bool:
    """Whether every row's (source, path) is at most the next row's, compared as pandas' sort does.

    Checked on the Arrow text of both columns, in C: strings compare by UTF-8 bytes, which is
    code-point order, as the sort's. A column of another type, or holding a missing value (where
    the sort's placement is pandas' own), is not checked: the caller sorts.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(frame) < 2:
        return True
    columns = []
    for name in ORDER:
        if frame[name].dtype != text_dtype():
            return False
        column = pa.chunked_array(pa.array(frame[name].array)).combine_chunks()
        if column.null_count:
            return False
        columns.append(column)
    source, path = columns
    head_source, tail_source, head_path, tail_path = source[:-1], source[1:], path[:-1], path[1:]
    after = pc.less(head_source, tail_source)
    along = pc.and_(pc.equal(head_source, tail_source), pc.less_equal(head_path, tail_path))
    return bool(pc.all(pc.or_(after, along)).as_py())


def problems_bytes(problems: Iterable[Problem]) -> bytes:
    import pandas as pd

    rows = [[getattr(p, column) for column in PROBLEM_COLUMNS] for p in problems]
    return frame_csv_bytes(pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS)))
