"""Structured upstream files read within budgets: archive members, JSON documents, workbooks.

An archive member is a claim like an image header: a 5.6 MB zip can hold a 2 GiB entry, so
:func:`read_member` decompresses as a stream and stops one byte past the budget, whatever
the member's header says. A JSON document can be nested 100,000 levels deep: Python's
parser then raises ``RecursionError``, which no reader expects and which names no file;
:func:`loads_json` turns that, and any nesting deeper than real annotation files use
(Darwin, COCO: a handful of levels), into :class:`UnreadableFile`, a ``ValueError`` the
reader reports against the file and moves past, so one hostile file costs its own rows only.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: bytes of one decompressed archive member / JSON file a reader may hold (real Darwin JSON:
#: a few KB; COCO files of whole datasets: tens of MB)
MAX_MEMBER_BYTES = 256 << 20
#: nesting of a JSON document (Darwin JSON nests 5 levels, COCO 4)
MAX_JSON_DEPTH = 64


class UnreadableFile(ValueError):
    """A structured file (or archive member) over its budget or not parseable; the message says why."""


def read_member(archive: zipfile.ZipFile, member: str | zipfile.ZipInfo, limit: int = MAX_MEMBER_BYTES) -> bytes:
    """The decompressed bytes of ``member``, read as a stream and refused past ``limit`` bytes.

    Raises :class:`UnreadableFile` when the member is larger than ``limit`` (declared or
    actual: the header's size is not trusted) or its data is corrupt.
    """
    info = member if isinstance(member, zipfile.ZipInfo) else archive.getinfo(member)
    if info.file_size > limit:
        raise UnreadableFile(f"{info.filename} declares {info.file_size:,} bytes, over the budget of {limit:,}")
    try:
        with archive.open(info) as stream:
            data = stream.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as err:
        raise UnreadableFile(f"{info.filename}: unreadable archive member ({err})") from err
    if len(data) > limit:
        raise UnreadableFile(f"{info.filename} inflates past the budget of {limit:,} bytes; not read further")
    return data


def depth_of(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts (0 for a scalar), walked level by level without recursion.

    Each container is visited once and scalars are never queued (a Darwin polygon is thousands
    of points of two numbers each), so checking a parsed document costs a fraction of parsing it.
    """
    depth, level = 0, [value] if isinstance(value, (dict, list)) else []
    while level:
        depth += 1
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below.extend([child for child in children if isinstance(child, (dict, list))])
        level = below
    return depth


def loads_json(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON document; :class:`UnreadableFile` for bad syntax, bad UTF-8 or nesting past ``max_depth``."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise UnreadableFile("JSON nested too deeply to parse (thousands of levels)") from None
    except (ValueError, TypeError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UnreadableFile(f"not valid JSON ({err})") from err
    depth = depth_of(value)
    if depth > max_depth:
        raise UnreadableFile(f"JSON nested {depth} levels deep, over the budget of {max_depth}")
    return value


def read_first_sheet(
    path: Path, max_bytes: int, header_case: Callable[[str], str] = str.strip
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The first sheet of an ``.xlsx`` workbook: its header and ``(sheet row number, {column: value})`` per row.

    Blank rows are skipped; header names pass through ``header_case`` (the sources spell their
    columns in any case). A file over ``max_bytes`` is refused before openpyxl opens it (a
    workbook is a zip: its XML can claim anything), and whatever a damaged file makes openpyxl
    raise becomes :class:`UnreadableFile`, which the caller reports against the file.
    """
    try:
        if path.stat().st_size > max_bytes:
            raise ValueError(
                f"{path.stat().st_size} bytes, more than the {max_bytes} any workbook of this dataset holds"
            )
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            rows = book.worksheets[0].iter_rows(values_only=True)
            header = [header_case(str(v or "").strip()) for v in next(rows, ())]
            found = []
            for number, values in enumerate(rows, start=2):
                record = {h: "" if v is None else str(v).strip() for h, v in zip(header, values, strict=False)}
                if any(record.values()):
                    found.append((number, record))
        finally:
            book.close()
    except Exception as err:
        raise UnreadableFile(f"{type(err).__name__}: {err}") from err
    return header, found
