"""What a parser gets to work with, and the tolerant readers every parser shares."""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from covid19_images.core.paths import UnsafePath, lexical_problem, safe_relative
from covid19_images.core.schema import Problem
from covid19_images.core.vocab import harmonise_finding
from covid19_images.sources.registry import SourceSpec


@dataclass
class SourceContext:
    """One source's checkout as a parser sees it.

    ``files`` lists every file in the checkout (posix paths relative to ``directory``), so
    parsers never walk the disk themselves and never see ``.git``.
    ``problems`` collects what the shared readers had to report; the builder drains it.
    """

    spec: SourceSpec
    directory: Path
    files: list[str]
    problems: list[Problem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    def problem(self, message: str, path: str = "", row: str = "", level: str = "warning") -> Problem:
        return Problem(self.name, message, path=path, row=row, level=level)

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
        if relative in self._file_set:
            return True
        reason = lexical_problem(relative)
        refused = self.__dict__.setdefault("_refused", set())
        if reason and relative not in refused:
            refused.add(relative)
            self.problems.append(self.problem(f"refused: {reason}", path=relative, row=row, level="error"))
        return False

    def require(self, relative: str, row: str, referenced_by: str) -> bool:
        """``exists`` for a file named by a metadata row: one problem, with the row, if it is not usable."""
        if self.exists(relative, row=row):
            return True
        if lexical_problem(relative) is None:
            self.problems.append(
                self.problem(f"metadata points at {relative}, which is not in the checkout", referenced_by, row)
            )
        return False

    @property
    def _file_set(self) -> set[str]:
        cached = self.__dict__.get("_files_cache")
        if cached is None:
            cached = set(self.files)
            self.__dict__["_files_cache"] = cached
        return cached

    def label(self, finding: str, path: str, row: str) -> tuple[str, str]:
        """``(label, label_detail)`` of a raw finding; a value the vocabulary lacks is reported, never guessed."""
        label, detail, known = harmonise_finding(finding)
        if not known:
            self.problems.append(self.problem(f"unmapped finding {finding!r} -> unknown", path=path, row=row))
        return label, detail

    def metadata_rows(self, relative: str) -> Iterator[dict[str, str]] | None:
        """Rows of the source's required metadata CSV; None (after reporting) if it is absent or unusable."""
        if not self.exists(relative):
            self.problems.append(
                self.problem(f"no {relative} in checkout; nothing to index", path=relative, level="error")
            )
            return None
        frame = self.read_csv(relative)
        return None if frame is None else iter_rows(frame)

    def read_csv(self, relative: str, **kwargs) -> pd.DataFrame | None:
        """Read upstream metadata tolerantly; see :func:`read_metadata_csv`."""
        return read_metadata_csv(self, relative, **kwargs)


def list_files(directory: Path) -> list[str]:
    """Every regular file under ``directory`` except git's own, sorted, as posix relative paths.

    Like ``os.walk`` (symlinked folders are listed neither as files nor descended into) but
    with ``os.scandir`` and plain strings: a checkout of 100,000 files is listed in well under
    a second.
    """
    found: list[str] = []
    stack = [""]
    while stack:
        prefix = stack.pop()
        try:
            entries = list(os.scandir(os.path.join(directory, prefix) if prefix else directory))
        except OSError:
            continue
        for entry in entries:
            if entry.name == ".git":
                continue
            relative = f"{prefix}/{entry.name}" if prefix else entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                found.append(relative)
            elif not entry.is_symlink():
                stack.append(relative)
    return sorted(found)


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
    ctx.problems.append(
        ctx.problem(
            f"not valid UTF-8 on {len(bad)} line(s) ({shown}); those bytes were read as cp1252 "
            "(check accented names on those lines)",
            path=relative,
            row=f"{relative} line {bad[0]}",
        )
    )
    return "\n".join(parts)


def read_metadata_csv(ctx: SourceContext, relative: str, *, dtype=str) -> pd.DataFrame | None:
    """Read a metadata CSV the way upstreams actually write them.

    Handles a BOM, CRLF, non-UTF-8 bytes, ragged rows (reported with their line and
    skipped), duplicated header names (reported; pandas keeps both as ``name``, ``name.1``),
    an unnamed trailing column, and an empty file. Every cell is a string; blanks are ``""``.
    Returns None (after reporting) when the file cannot be used at all.
    A ``_row`` column carries ``"<file> line N"`` for every row so problems can point at it.
    """
    try:
        path = ctx.directory / safe_relative(ctx.directory, relative)
    except UnsafePath as err:
        ctx.problems.append(ctx.problem(f"refused: {err}", path=relative, level="error"))
        return None
    try:
        raw = path.read_bytes()
    except OSError as err:
        ctx.problems.append(ctx.problem(f"cannot read metadata: {err}", path=relative, level="error"))
        return None
    text = _decode_text(ctx, relative, raw)
    if not text.strip():
        ctx.problems.append(ctx.problem("metadata file is empty", path=relative, level="error"))
        return None
    # Find the physical line on which each record starts (records may span lines in quotes).
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as err:
        ctx.problems.append(
            ctx.problem(f"cannot parse header: {err}", path=relative, row=f"{relative} line 1", level="error")
        )
        return None
    names = [h.strip() for h in header]
    seen: dict[str, int] = {}
    columns: list[str] = []
    for index, name in enumerate(names):
        if not name:
            name = f"unnamed_{index}"
        if name in seen:
            ctx.problems.append(
                ctx.problem(
                    f"header column {name!r} appears twice; kept as {name}.{seen[name]}",
                    path=relative,
                    row=f"{relative} line 1",
                )
            )
            seen[name] += 1
            name = f"{name}.{seen[name] - 1}"
        else:
            seen[name] = 1
        columns.append(name)
    records: list[tuple[int, list[str]]] = []
    while True:
        line_no = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            ctx.problems.append(
                ctx.problem(f"malformed CSV record skipped: {err}", path=relative, row=f"{relative} line {line_no}")
            )
            continue
        if record and any(cell.strip() for cell in record):
            records.append((line_no, record))
    widths = Counter(len(record) for _, record in records)
    usual = widths.most_common(1)[0][0] if widths else len(columns)
    rows: list[list[str]] = []
    lines: list[str] = []
    for line_no, record in records:
        if len(record) != len(columns):
            fitted = _fit_record(record, columns, usual)
            if fitted is None:
                ctx.problems.append(
                    ctx.problem(
                        f"ragged row: {len(record)} fields, header has {len(columns)} (unquoted comma?); row skipped",
                        path=relative,
                        row=f"{relative} line {line_no}",
                    )
                )
                continue
            record = fitted
        rows.append([cell.strip() for cell in record])
        lines.append(f"{relative} line {line_no}")
    frame = pd.DataFrame(rows, columns=columns, dtype=object).fillna("")
    frame["_row"] = lines
    return frame


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
    for values in frame.itertuples(index=False, name=None):
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


@lru_cache(maxsize=256)
def _normalised_keys(keys: tuple[str, ...]) -> dict[str, str]:
    """normalised column name -> the row's own key (the last one wins, as a dict built in order would)."""
    return {k.strip().lower().replace(" ", "_"): k for k in keys}
