"""What a parser gets to work with, and the tolerant readers every parser shares."""

from __future__ import annotations

import codecs
import csv
import io
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

from covid19_images.core.paths import UnsafePath, lexical_problem, safe_relative
from covid19_images.core.schema import Entry, Problem
from covid19_images.core.vocab import harmonise_finding
from covid19_images.sources.listing import FileList, list_files  # noqa: F401 - parsers and tests import them from here
from covid19_images.sources.plain_csv import plain_records, stripped_column
from covid19_images.sources.row_blocks import replay_rows
from covid19_images.sources.row_memo import RowMemo, replay_or_run, row_tuples
from covid19_images.sources.spec import SourceSpec

if TYPE_CHECKING:  # pragma: no cover - pandas is imported when a CSV is read: loading the registry needs none
    import pandas as pd


@dataclass
class SourceContext:
    """One source's checkout as a parser sees it.

    ``files`` lists every file in the checkout (posix paths relative to ``directory``), so
    parsers never walk the disk themselves and never see ``.git``.

    Problems have one way in: :meth:`report`, which records the problem at once, so there is
    no Problem object a parser could build and then forget to hand over. A parser's ``parse``
    yields :class:`~covid19_images.core.schema.Entry` rows only (the builder refuses anything
    else as a parser bug); the shared readers below report through the same method.
    """

    spec: SourceSpec
    directory: Path
    files: list[str]
    #: the previous build's per-row records (:mod:`covid19_images.sources.row_memo`); None: compute every row
    memo: RowMemo | None = None
    _problems: list[Problem] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        # files :func:`list_files` had to leave out (undecodable names, loops, pipes) are this source's problems
        for relative, reason in getattr(self.files, "skipped", ()):
            self.report(reason, path=relative, level="error")

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Everything reported so far, in order (read-only: :meth:`report` is the only way in)."""
        return tuple(self._problems)

    def report(self, message: str, path: str = "", row: str = "", level: str = "warning") -> None:
        """Record a problem with this source; it reaches ``problems.csv`` without further ado.

        Args:
            message: what is wrong and what was done about it (skipped, kept, guessed nothing).
            path: the file concerned, relative to the source folder (``datasets/<name>/``), as
                the parser knows it; ``""`` for the source as a whole.
            row: the metadata row (``"<file> line N"``) when one is concerned.
            level: ``error`` (data lost or unusable), ``warning`` (skipped or doubtful), ``info``.
        """
        self._problems.append(Problem(self.name, message, path=path, row=row, level=level))

    def option(self, key: str, default=None):
        return self.spec.options.get(key, default)

    def files_under(self, prefix: str) -> list[str]:
        prefix = prefix.rstrip("/") + "/"
        return [f for f in self.files if f.startswith(prefix)]

    def exists(self, relative: str, row: str = "") -> bool:
        """True if ``relative`` is a file of the checkout.

        A path that would leave the source folder (``..``, absolute) never exists; the
        refusal is recorded here, once per path, so the report says "refused" rather than
        just "missing" even when the parser only asked whether the file is there.
        """
        present = relative in self.file_set
        reason = None if present else lexical_problem(relative)
        if self.memo is not None:
            self.memo.note_lookup(relative, present, reason is not None)
        if present:
            return True
        refused = self.__dict__.setdefault("_refused", set())
        if reason and relative not in refused:
            refused.add(relative)
            self.report(f"refused: {reason}", path=relative, row=row, level="error")
        return False

    def require(self, relative: str, row: str, referenced_by: str) -> bool:
        """``exists`` for a file named by a metadata row: one problem, with the row, if it is not usable."""
        if self.exists(relative, row=row):
            return True
        if lexical_problem(relative) is None:
            self.report(f"metadata points at {relative}, which is not in the checkout", referenced_by, row)
        return False

    def memoised(self, row: dict[str, str], produce, *args) -> Iterator[Entry]:
        """``produce(self, row, *args)``'s entries, replayed from the last build when the row, ``args`` and the
        answers of ``exists``/``require`` are the same (:mod:`covid19_images.sources.row_memo` says what may vary)."""
        if self.memo is None:
            yield from list(produce(self, row, *args))
        else:
            yield from replay_or_run(self, self.memo, row, produce, args)

    def memoised_rows(self, frame: pd.DataFrame, produce, *args) -> Iterator[Entry]:
        """:meth:`memoised` over every row of ``frame`` in order, without a dict per replayed row: an
        upstream of 100,000 rows that adds one computes one and replays the rest in bulk.

        Yield its items as they come: for a builder that carries rows they are
        :class:`~covid19_images.sources.row_memo.MemoRow` rows, not entries (their manifest rows may
        come from the previous manifest, :mod:`covid19_images.manifest.row_carry`)."""
        if self.memo is None:
            for row in iter_rows(frame):
                yield from list(produce(self, row, *args))
        else:
            yield from replay_rows(self, self.memo, frame, produce, args)

    def files_named(self, name: str) -> tuple[str, ...]:
        """Every file of the checkout whose file name is ``name``, in listing order (remembered by the
        row memo like :meth:`exists`, so a row that found its image by name is replayed only while
        exactly those files have that name)."""
        if "_by_name" not in self.__dict__:
            by_name: dict[str, list[str]] = {}
            for relative in self.files:
                by_name.setdefault(relative.rpartition("/")[2], []).append(relative)
            self.__dict__["_by_name"] = {key: tuple(paths) for key, paths in by_name.items()}
        found = self.__dict__["_by_name"].get(name, ())
        if self.memo is not None:
            self.memo.note_named(name, found)
        return found

    @property
    def file_set(self) -> set[str]:
        if "_files_cache" not in self.__dict__:
            self.__dict__["_files_cache"] = set(self.files)
        return self.__dict__["_files_cache"]

    def label(self, finding: str, path: str, row: str) -> tuple[str, str]:
        """``(label, label_detail)`` of a raw finding; a value the vocabulary lacks is reported, never guessed."""
        label, detail, known = harmonise_finding(finding)
        if not known:
            self.report(f"unmapped finding {finding!r} -> unknown", path=path, row=row)
        return label, detail

    def metadata_rows(self, relative: str) -> Iterator[dict[str, str]] | None:
        """Rows of the source's required metadata CSV; None (after reporting) if it is absent or unusable."""
        if not self.exists(relative):
            self.report(f"no {relative} in checkout; nothing to index", path=relative, level="error")
            return None
        frame = self.read_csv(relative)
        return None if frame is None else iter_rows(frame)

    def read_csv(self, relative: str, **kwargs) -> pd.DataFrame | None:
        """Read upstream metadata tolerantly; see :func:`read_metadata_csv`."""
        return read_metadata_csv(self, relative, **kwargs)


#: CSV fields of any length: Python's csv module refuses fields over 128 KiB by default, which
#: made a row with long clinical notes "malformed" and dropped its image.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _cp1252_fallback(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return err.object[err.start : err.end].decode("cp1252", errors="replace"), err.end


codecs.register_error("covid19-images-cp1252", _cp1252_fallback)


def _decode_text(ctx: SourceContext, relative: str, raw: bytes) -> str:
    """UTF-8 where it is UTF-8, cp1252 only for the bytes that are not.

    Upstream CSVs get edited in Excel: a file can be UTF-8 except for a few rows saved as
    Windows-1252. Decoding the whole file as cp1252 would garble every correct non-ASCII
    file name, so only the offending bytes are read as cp1252, and their lines reported.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    parts: list[str] = []
    bad: list[int] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            parts.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            bad.append(number)
            parts.append(line.decode("utf-8", errors="covid19-images-cp1252"))
    shown = ", ".join(str(n) for n in bad[:10]) + (" ..." if len(bad) > 10 else "")
    ctx.report(
        f"not valid UTF-8 on {len(bad)} line(s) ({shown}); those bytes were read as cp1252 "
        "(check accented names on those lines)",
        path=relative,
        row=f"{relative} line {bad[0]}",
    )
    return "\n".join(parts)


def read_metadata_csv(ctx: SourceContext, relative: str, *, dtype=str, comment_prefix: str = "") -> pd.DataFrame | None:
    """Read a metadata CSV the way upstreams actually write them.

    Handles a BOM, CRLF, non-UTF-8 bytes, ragged rows (reported with their line and
    skipped), duplicated header names (reported; pandas keeps both as ``name``, ``name.1``),
    an unnamed trailing column, and an empty file. Every cell is a string; blanks are ``""``.
    Returns None (after reporting) when the file cannot be used at all.
    A ``_row`` column carries ``"<file> line N"`` for every row so problems can point at it.
    ``comment_prefix`` skips the comment lines some files put before their header (ieee8023's
    severity scores start with ``##`` lines); line numbers stay those of the file.
    """
    try:
        path = ctx.directory / safe_relative(ctx.directory, relative)
    except UnsafePath as err:
        ctx.report(f"refused: {err}", path=relative, level="error")
        return None
    try:
        raw = path.read_bytes()
    except OSError as err:
        ctx.report(f"cannot read metadata: {err}", path=relative, level="error")
        return None
    text = _decode_text(ctx, relative, raw)
    skipped = 0
    if comment_prefix:
        physical = text.split("\n")
        while skipped < len(physical) and physical[skipped].startswith(comment_prefix):
            skipped += 1
        text = "\n".join(physical[skipped:])
    if not text or text.isspace():
        ctx.report("metadata file is empty", path=relative, level="error")
        return None
    # A header without quotes or line breaks is its first line alone: the whole text goes into the csv
    # module (a copy at 4 bytes a character: 0.03-0.09 s for 13.6 MB) only for records read one by one.
    end = text.find("\n")
    first = text[: end if end >= 0 else len(text)]
    alone = '"' not in first and "\r" not in first[:-1]
    reader = csv.reader([first] if alone else io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as err:
        ctx.report(f"cannot parse header: {err}", path=relative, row=f"{relative} line {1 + skipped}", level="error")
        return None
    names = [h.strip() for h in header]
    seen: dict[str, int] = {}
    columns: list[str] = []
    for index, name in enumerate(names):
        if not name:
            name = f"unnamed_{index}"
        if name in seen:
            ctx.report(
                f"header column {name!r} appears twice; kept as {name}.{seen[name]}",
                path=relative,
                row=f"{relative} line {1 + skipped}",
            )
            seen[name] += 1
            name = f"{name}.{seen[name] - 1}"
        else:
            seen[name] = 1
        columns.append(name)
    plain = plain_records(text, len(columns), 1 + skipped)  # no quotes: Arrow splits it, line for line
    if plain is None and alone:  # records one by one: a reader over the whole text, past the header
        reader = csv.reader(io.StringIO(text, newline=""))
        next(reader)
    lines, cells = plain if plain is not None else _checked_records(ctx, relative, reader, columns, skipped)
    import pandas as pd

    data = dict(zip(columns, cells, strict=True))
    data["_row"] = [f"{relative} line {n}" for n in lines]
    return pd.DataFrame(data, columns=list(data), dtype=object, copy=False)  # every record has every column


def _checked_records(ctx: SourceContext, relative: str, reader, columns: list[str], skipped: int) -> tuple[list, list]:
    """(physical line of each record, each column's stripped cells) of the records after the header,
    read one at a time so that a malformed or ragged one is reported with its line and skipped."""
    records: list[tuple[int, list[str]]] = []
    while True:
        line_no = reader.line_num + 1 + skipped
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            ctx.report(f"malformed CSV record skipped: {err}", path=relative, row=f"{relative} line {line_no}")
            continue
        if record and "".join(record).strip():  # a blank record has only whitespace in every cell
            records.append((line_no, record))
    widths = Counter(len(record) for _, record in records)
    usual = widths.most_common(1)[0][0] if widths else len(columns)
    rows: list[list[str]] = []
    lines: list[int] = []
    for line_no, record in records:
        if len(record) != len(columns):
            fitted = _fit_record(record, columns, usual)
            if fitted is None:
                ctx.report(
                    f"ragged row: {len(record)} fields, header has {len(columns)} (unquoted comma?); row skipped",
                    path=relative,
                    row=f"{relative} line {line_no}",
                )
                continue
            record = fitted
        rows.append(record)
        lines.append(line_no)
    return lines, _stripped_columns(rows, len(columns))


def _stripped_columns(rows: list[list[str]], width: int) -> list:
    """The records' cells by column (object arrays), each stripped of whitespace at both ends."""
    return [stripped_column(map(itemgetter(at), rows)) for at in range(width)]


def _fit_record(record: list[str], columns: list[str], usual: int) -> list[str] | None:
    """Forgive only what is harmless: a missing unnamed trailing column, or trailing empty cells
    that every record has (``usual`` is the most common record width).

    A single record longer than the others is not trimmed even if it ends in empty cells:
    that is what an unquoted comma looks like, and trimming it would silently shift the
    record's values into the wrong columns (a label read from the wrong cell).
    """
    trimmed = list(record)
    if len(trimmed) > len(columns) and len(trimmed) == usual:
        while len(trimmed) > len(columns) and not trimmed[-1].strip():
            trimmed.pop()
    if len(trimmed) == len(columns) - 1 and columns[-1].startswith("unnamed_"):
        trimmed.append("")
    return trimmed if len(trimmed) == len(columns) else None


def iter_rows(frame: pd.DataFrame) -> Iterator[dict[str, str]]:
    """Rows as plain dicts (column -> stripped string), ``_row`` included."""
    columns = list(frame.columns)
    for values in row_tuples(frame):
        yield dict(zip(columns, values, strict=True))


def column(row: dict[str, str], *names: str, default: str = "") -> str:
    """First present column among ``names``, matched case- and space-insensitively.

    Upstream schemas drift (``Patientid`` vs ``patientid``, ``" url"`` vs ``url``,
    ``clinical notes`` vs ``clinical_notes``); parsers name every spelling they accept.
    The normalised header of a row's key set is computed once and shared by all rows.
    """
    lookup = _normalised_keys(tuple(row))
    for name in names:
        key = lookup.get(name.strip().lower().replace(" ", "_"))
        if key is not None:
            return str(row[key] or "").strip()
    return default


def column_name(columns, *names: str) -> str | None:
    """The frame column :func:`column` would read for ``names`` (None if there is none)."""
    lookup = _normalised_keys(tuple(columns))
    for name in names:
        key = lookup.get(name.strip().lower().replace(" ", "_"))
        if key is not None:
            return key
    return None


@lru_cache(maxsize=256)
def _normalised_keys(keys: tuple[str, ...]) -> dict[str, str]:
    """normalised column name -> the row's own key (the last one wins, as a dict built in order would)."""
    return {k.strip().lower().replace(" ", "_"): k for k in keys}
