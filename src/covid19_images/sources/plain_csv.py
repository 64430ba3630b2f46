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

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


def plain_records(text: str, width: int, first_line: int = 1) -> tuple[list[int], list[np.ndarray]] | None:
    """The records of ``text`` (its first line the header, ``width`` fields wide) when it is plain:
    each kept record's physical line number (the header's is ``first_line``) and each column's
    cells stripped of whitespace at both ends, as object arrays. Records whose every cell is blank
    are left out, as the record-by-record path leaves them out. None when the table is not plain."""
    if '"' in text or "\x00" in text or text.count("\r") != text.count("\r\n"):
        return None
    lines = text.split("\n")
    if not lines[0].rstrip("\r") or width < 1:
        return None
    numbers = [number for number, line in enumerate(lines[1:], start=first_line + 1) if line and line != "\r"]
    table = _arrow_table(text, width)
    if table is None or table.num_rows != len(numbers) or table.num_columns != width:
        return None
    columns = [_stripped(column.to_pylist()) for column in table.columns]
    return _without_blank_records(numbers, columns)


def _arrow_table(text: str, width: int):
    """``text`` after its header line as an Arrow table of ``width`` text columns, or None if Arrow refuses it."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    names = [f"c{at}" for at in range(width)]
    try:
        return pa_csv.read_csv(
            pa.BufferReader(text.encode("utf-8")),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pa_csv.ParseOptions(quote_char=False, escape_char=False, newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeEncodeError):  # a ragged record, a lone surrogate
        return None


def _stripped(cells: list[str]) -> np.ndarray:
    """The cells stripped as ``str.strip`` strips them, as an object array pandas takes as it is."""
    import numpy as np

    column = np.empty(len(cells), dtype=object)
    column[:] = list(map(str.strip, cells))
    return column


def _without_blank_records(numbers: list[int], columns: list[np.ndarray]) -> tuple[list[int], list[np.ndarray]]:
    import numpy as np

    blank = np.ones(len(numbers), dtype=bool)
    for column in columns:
        blank &= column == ""
    if not blank.any():
        return numbers, columns
    kept = ~blank
    return np.asarray(numbers)[kept].tolist(), [column[kept] for column in columns]
