"""A metadata table without quotes, split by Arrow's CSV reader: the same records in a fraction of the time.

:func:`~covid19_images.sources.parsing.read_metadata_csv` walks the records with Python's ``csv``
module so that each one can be checked and reported with its physical line (ragged rows,
malformed records, cells spanning lines in quotes): 0.6-0.8 s for a 200,000-row table like
NIH's, paid by every sync that reads the source again. Most tables are plain: no quote character,
no NUL, lines ended by ``\\n`` or ``\\r\\n``, every record as wide as the header. In such a table
every record is one physical line, so the line numbers follow from the lines themselves, and
Arrow's reader (all columns as text, nothing read as missing, quoting off) gives exactly the
fields the ``csv`` module gives (0.03-0.06 s, docs/benchmarks.md, round twelve). Any other table,
or any record Arrow refuses, gets None, and the caller takes the record-by-record path, which
says what is wrong and where.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


def plain_records(text: str, width: int, first_line: int = 1) -> tuple[list[int], list[np.ndarray]] | None:
    """The records of ``text`` (its first line the header, ``width`` fields wide) when it is plain:
    each kept record's physical line number (the header's is ``first_line``) and each column's
    cells stripped of whitespace at both ends, as object arrays. Records whose every cell is blank
    are left out, as the record-by-record path leaves them out. None when the table is not plain."""
    if '"' in text or "\x00" in text or text.count("\r") != text.count("\r\n") or width < 1:
        return None
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None
    numbers = _record_lines(data, first_line)
    table = _arrow_table(data, width)
    if numbers is None or table is None or table.num_rows != len(numbers) or table.num_columns != width:
        return None
    return _without_blank_records(numbers, [stripped_column(column.to_pylist()) for column in table.columns])


def stripped_column(cells: Iterable[str]) -> np.ndarray:
    """The cells stripped as ``str.strip`` strips them, as an object array pandas takes as it is
    (filled from one C-level ``map``: a list per record handed to pandas cost three times as much)."""
    import numpy as np

    values = list(map(str.strip, cells))
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _record_lines(data: bytes, first_line: int) -> list[int] | None:
    """The physical line number of every non-empty line after the header (the lines Arrow reads as
    records), found from the line ends in the bytes; None when the header line is empty."""
    import numpy as np

    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(data)]))
    length = stops - starts
    crlf = np.frombuffer(data, dtype=np.uint8)[np.maximum(stops - 1, 0)] == ord("\r")
    empty = (length == 0) | ((length == 1) & crlf)
    if empty[0]:
        return None
    return (np.flatnonzero(~empty[1:]) + first_line + 1).tolist()


def _arrow_table(data: bytes, width: int):
    """``data`` after its header line as an Arrow table of ``width`` text columns, or None if Arrow refuses it."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    names = [f"c{at}" for at in range(width)]
    try:
        return pa_csv.read_csv(
            pa.BufferReader(data),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pa_csv.ParseOptions(quote_char=False, escape_char=False, newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:  # a ragged record
        return None


def _without_blank_records(numbers: list[int], columns: list[np.ndarray]) -> tuple[list[int], list[np.ndarray]]:
    import numpy as np

    blank = np.ones(len(numbers), dtype=bool)
    for column in columns:
        blank &= column == ""
    if not blank.any():
        return numbers, columns
    kept = ~blank
    return np.asarray(numbers)[kept].tolist(), [column[kept] for column in columns]
