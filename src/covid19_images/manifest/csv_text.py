"""CSV text byte for byte as pandas' ``to_csv(index=False, lineterminator="\\n")`` writes it, made on whole columns.

Why: manifests live in users' repositories and are diffed by git, so their format is fixed,
but pandas' writer turns every cell into a Python object and hands rows one by one to Python's
csv module (0.8 s for a 50,000-row manifest, most of a one-image sync's write). Here the same
rules run on whole columns in pyarrow.compute.

The rules are those of CPython's csv writer (``Modules/_csv.c``, ``join_append_data`` and
``csv_writerow``) under pandas' settings (delimiter ``,``, quote character ``"``, doubled
quotes, no escape character, ``QUOTE_MINIMAL``, line terminator ``\\n``): a field is quoted
when it holds a character that needs it, quote characters inside are doubled, a missing value
is written empty, and a row whose only field is empty is written ``""``. Which characters need
quoting changed between Python versions (3.11 quotes the delimiter, the quote character and the
line terminator's characters; newer versions also every ``\\r`` and ``\\n``), so the running
interpreter's own csv module is asked, once, about each candidate. One deliberate difference: a
field holding ``\\r`` is always quoted, as Python 3.12 and newer quote it. Python 3.11 writes a
lone ``\\r`` bare, and every CSV reader (pandas' among them) then ends the row there, so such a
value would come back as two rows; quoted, it comes back as itself. The header goes through the
csv module too. Anything else (a column that is not all text, labels that are not text, no
columns at all) is written by pandas itself, fully quoted when a text cell holds ``\\r``.
"""

from __future__ import annotations

import csv
import functools
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - pandas and pyarrow are imported where a frame is written
    import numpy as np
    import pandas as pd
    import pyarrow as pa

#: every character some CPython version's csv writer treats specially under pandas' settings: the
#: delimiter, the quote character, the line terminator's characters (3.11), ``\r`` and ``\n``
#: (newer versions), and NUL (older versions compared every character with an unset escape character, NUL)
_CANDIDATES = (",", '"', "\n", "\r", "\x00")


def _written(field: str) -> str | None:
    """How this interpreter's csv writer writes ``field`` alone in a row (None if it refuses to)."""
    out = io.StringIO()
    try:
        csv.writer(out, lineterminator="\n").writerow(["a" + field + "b"])
    except csv.Error:
        return None
    return out.getvalue()


@functools.cache
def _rules() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(characters that make a field quoted, characters this csv module refuses to write).

    ``\\r`` always makes a field quoted, whatever this interpreter's writer does with it.
    """
    quoted = tuple(c for c in _CANDIDATES if c == "\r" or (_written(c) or "").startswith('"'))
    refused = tuple(c for c in _CANDIDATES if _written(c) is None)
    return quoted, refused


def _pandas_csv_bytes(frame: pd.DataFrame) -> bytes:
    """pandas' bytes for a frame that is not all text; every text field quoted if a cell holds ``\\r``
    and this interpreter's writer would leave it bare (Python 3.11), so that the file reads back."""
    if _written("\r") == "a\rb\n" and _any_cell_holds(frame, "\r"):
        return frame.to_csv(index=False, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _any_cell_holds(frame: pd.DataFrame, character: str) -> bool:
    """Whether a column label or a text cell of ``frame`` holds ``character``."""
    if any(character in str(label) for label in frame.columns):
        return True
    import pandas as pd

    texts = (
        column for _, column in frame.items() if column.dtype == object or isinstance(column.dtype, pd.StringDtype)
    )
    return any(text.astype("string").str.contains(character, regex=False).fillna(False).any() for text in texts)


def frame_csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame.to_csv(index=False, lineterminator="\\n").encode("utf-8")``, fast for all-text frames,
    with every ``\\r`` inside quotes on any Python version (the module's docstring says why)."""
    texts = _text_columns(frame)
    if texts is None:
        return _pandas_csv_bytes(frame)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(list(frame.columns))
    return b"".join((header.getvalue().encode("utf-8"), *_body(texts)))  # the body's bytes copied once


def _text_columns(frame: pd.DataFrame) -> list[pa.ChunkedArray] | None:
    """Each column as pyarrow large_string chunks without nulls, or None when pandas must write the frame.

    The chunks are pandas' own (a manifest joined from its sources' rows has one or more per
    source): combining them first copied every column (120 MB at 200,000 rows) before the join
    copied it again; Arrow joins chunked columns as they are."""
    import pandas as pd
    import pyarrow as pa

    if frame.shape[1] == 0 or not all(isinstance(label, str) and "\r" not in label for label in frame.columns):
        return None  # pandas writes it (a label holding \r: the header goes through the csv module)
    texts = []
    for _, column in frame.items():
        if isinstance(column.dtype, pd.StringDtype):
            array = pa.array(column.array)  # the Arrow data pandas holds (or one conversion of python strings)
        elif column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
            try:
                array = pa.array(column.to_numpy(), type=pa.large_string(), from_pandas=True)
            except (pa.ArrowException, UnicodeError):  # e.g. a lone surrogate: pandas' error is the right one
                return None
        else:
            return None
        chunks = array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])
        texts.append(chunks.cast(pa.large_string()).fill_null(""))  # pandas' na_rep
    _, refused = _rules()
    if any(_holding(text, refused) is not None for text in texts):
        return None
    return texts


def _holding(text: pa.ChunkedArray, characters: tuple[str, ...]) -> np.ndarray | None:
    """Which values hold any of ``characters`` (ASCII), or None if none does (chunk by chunk)."""
    import numpy as np

    found = [_chunk_holding(chunk, characters) for chunk in text.chunks]
    if all(rows is None for rows in found):
        return None
    return np.concatenate(
        [
            np.zeros(len(chunk), dtype=bool) if rows is None else rows
            for chunk, rows in zip(text.chunks, found, strict=True)
        ]
    )


def _chunk_holding(text: pa.Array, characters: tuple[str, ...]) -> np.ndarray | None:
    """:func:`_holding` for one array: one pass of NumPy over its UTF-8 bytes (an ASCII byte never
    occurs inside a multi-byte character), then the rare hits are mapped to their rows by the offsets.
    """
    import numpy as np

    if not characters or len(text) == 0:
        return None
    _, offsets, data = text.buffers()[:3]
    bounds = np.frombuffer(offsets, dtype=np.int64)[text.offset : text.offset + len(text) + 1]
    if data is None or bounds[-1] == bounds[0]:
        return None
    raw = np.frombuffer(data, dtype=np.uint8)[bounds[0] : bounds[-1]]
    hit = raw == ord(characters[0])
    for character in characters[1:]:
        hit |= raw == ord(character)
    where = np.flatnonzero(hit)
    if not len(where):
        return None
    rows = np.zeros(len(text), dtype=bool)
    rows[np.searchsorted(bounds, where + bounds[0], side="right") - 1] = True
    return rows


def _field(text: pa.ChunkedArray, alone: bool) -> pa.ChunkedArray:
    """One column's fields as the csv writer writes them (``alone``: the frame's only column)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    string = pa.large_string()
    quoted, _ = _rules()
    needs = _holding(text, quoted)
    if needs is not None:
        quote, nothing = pa.scalar('"', string), pa.scalar("", string)
        doubled = pc.replace_substring(text, '"', '""')
        text = pc.if_else(pa.array(needs), pc.binary_join_element_wise(quote, doubled, quote, nothing), text)
    if alone:  # csv_writerow: a record of one empty field is written as a quoted empty string
        text = pc.if_else(pc.equal(text, pa.scalar("", string)), pa.scalar('""', string), text)
    return text


def _body(texts: list[pa.ChunkedArray]) -> list[memoryview]:
    """The rows' bytes, fields joined by ``,`` and each row ended by ``\\n``: views of the Arrow buffers.

    The line terminator is appended to the last field before the fields are joined, so the joined
    rows are the whole body: a second join that only ended each row copied all the bytes again
    (0.3 s of a 200,000-row manifest)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    string = pa.large_string()
    fields = [_field(text, alone=len(texts) == 1) for text in texts]
    fields[-1] = pc.binary_join_element_wise(fields[-1], pa.scalar("\n", string), pa.scalar("", string))
    lines = pc.binary_join_element_wise(*fields, pa.scalar(",", string)) if len(fields) > 1 else fields[0]
    views = []
    for chunk in lines.chunks:
        if len(chunk) == 0:
            continue
        _, offsets, data = chunk.buffers()
        bounds = np.frombuffer(offsets, dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
        views.append(memoryview(data)[int(bounds[0]) : int(bounds[-1])])
    return views
