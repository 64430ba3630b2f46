"""A parser's per-row work, remembered between builds: an upstream that adds one row costs one row.

Most sources are a metadata table mapping each row to an image. A parser hands the function
that turns one row into entries to :meth:`SourceContext.memoised
<covid19_images.sources.parsing.SourceContext.memoised>`; the first build runs it and records
what came out (the entries, the problems it reported) and what it looked at besides the row
(every ``ctx.exists``/``ctx.require`` answer). A later build whose row has the same content
(every cell, the header names, the function and its extra arguments: line numbers excluded,
so an inserted row moves nothing) and whose recorded file questions still get the same answers
replays the record, with the row's current ``<file> line N``; any other row is computed again.

What a row's function may depend on is therefore stated, not guessed: the row, its arguments,
and the checkout's files through ``ctx``. A function that reads file bytes must pass their git
blob id or hash as an argument (or not be memoised). The whole memo is keyed like the source
cache by the code, the registry entry and the settings (:func:`covid19_images.manifest.
source_cache.source_key` without the commit), so an edited parser starts from nothing; ``sync
--rebuild`` never uses it. Only digests of rows are kept, never their cells; a source whose
build found identifying values keeps no memo (``manifest.build``).

A builder that can carry rows (``memo.bulk``) gets :class:`MemoRow` items (and blocks of them) from
:func:`~covid19_images.sources.row_blocks.replay_rows` instead of entries: a replayed row's
entries stay as recorded values, so the builder can take their
finished manifest rows from the previous manifest (:mod:`covid19_images.manifest.row_carry`) and
never turn 100,000 unchanged rows into objects. ``carry`` holds the digests of the rows all of
whose entries gave a manifest row in the build that saved the memo, and ``token`` names that
save, for the builder to match against the build that wrote the previous manifest.
"""

from __future__ import annotations

import hashlib
import pickle
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from covid19_images.core.collections_pause import loaded_for_the_build
from covid19_images.core.schema import Entry, Problem


class SourceContext(Protocol):
    """What the memo needs of :class:`covid19_images.sources.parsing.SourceContext` (which imports this module)."""

    file_set: set[str]
    problems: tuple[Problem, ...]

    def report(self, message: str, path: str = "", row: str = "", level: str = "warning") -> None: ...

    def files_named(self, name: str) -> tuple[str, ...]: ...


FOLDER = "rows"
#: Bump when a record's layout changes.
FORMAT = 4
_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))
_ROW_AT = _ENTRY_FIELDS.index("row")
#: Where a recorded entry keeps its path.
PATH_AT = _ENTRY_FIELDS.index("path")
_EXTRA_AT = _ENTRY_FIELDS.index("extra")
#: A stored ``row`` that stands for "the current row's ``<file> line N``".
_HERE = None


#: What one row gave, as plain tuples (they load several times faster than objects): its entries'
#: field values and its problems ``(message, path, row, level)``, ``_HERE`` standing for the row's
#: ``<file> line N``; and the file questions it asked, ``(path, answer)``.
Record = tuple[
    tuple[tuple, ...], tuple[tuple[str, str, str | None, str], ...], tuple[tuple[str, bool | tuple[str, ...]], ...]
]
#: Marks a recorded question "which files have this name?" (a path never holds NUL); its answer is the paths.
NAMED = "\x00"


@dataclass
class RowMemo:
    """The records of one source under one key; ``used`` becomes the next build's memo.

    Kept as a base file and a delta file beside it: a build that computed a few rows writes only
    what changed since the base (rewriting 100,000 records cost 0.3 s of a one-image sync), and
    writes a new base once the delta grows past an eighth of the records.
    """

    key: str
    stored: dict[bytes, Record] = field(default_factory=dict)
    used: dict[bytes, Record] = field(default_factory=dict)
    replayed: int = 0
    computed: int = 0
    lookups: list[tuple[str, bool | tuple[str, ...]]] | None = None  # being recorded for the row now computed
    uncachable: bool = False
    #: digests of the rows all of whose entries gave a manifest row (the saving build's, and this build's)
    carry: set[bytes] = field(default_factory=set)
    carry_next: set[bytes] = field(default_factory=set)
    #: names the save this memo was loaded from ("" for none): see :mod:`covid19_images.manifest.row_carry`
    token: str = ""
    #: the builder takes :class:`MemoRow` items from ``row_blocks.replay_rows`` (set by the builder)
    bulk: bool = False
    carried: int = 0
    #: the short cells of this build's records, one object each (see :func:`_shared`)
    pool: dict[str, str] = field(default_factory=dict)
    #: the base file's records, carry set and token, which a delta is written against
    base: dict[bytes, Record] = field(default_factory=dict)
    base_carry: set[bytes] = field(default_factory=set)
    base_token: str = ""
    #: block digest -> the digests of its rows (:mod:`covid19_images.sources.row_blocks`): stored, this build's
    blocks: dict[bytes, tuple[bytes, ...]] = field(default_factory=dict)
    blocks_used: dict[bytes, tuple[bytes, ...]] = field(default_factory=dict)
    base_blocks: dict[bytes, tuple[bytes, ...]] = field(default_factory=dict)
    blocks_replayed: int = 0

    @classmethod
    def load(cls, cache_dir: Path | None, name: str, key: str) -> RowMemo:
        """The memo stored for ``name`` under ``key``; an empty one if none, another key's, or unreadable."""
        memo = cls(key)
        if cache_dir is None:
            return memo
        with loaded_for_the_build():  # about a million tuples: not walked by the collector (core.collections_pause)
            base = _read(cache_dir / FOLDER / f"{name}.pickle", key)  # our own files, in the root's git dir
        if base is None:
            return memo
        stored, carry, token, blocks = base
        if not (isinstance(stored, dict) and isinstance(carry, set) and isinstance(blocks, dict)):
            return memo
        memo.stored, memo.carry, memo.token, memo.blocks = stored, carry, str(token), blocks
        memo.base, memo.base_carry, memo.base_token, memo.base_blocks = stored, carry, memo.token, blocks
        delta = _read(cache_dir / FOLDER / f"{name}.delta.pickle", key)
        if delta is not None and len(delta) == 8 and delta[0] == memo.base_token:
            _base, added, removed, carry_added, carry_removed, token, blocks_added, blocks_removed = delta
            memo.stored = {d: r for d, r in stored.items() if d not in removed}
            memo.stored.update(added)
            memo.carry = (carry - carry_removed) | carry_added
            memo.token = str(token)
            memo.blocks = {b: d for b, d in blocks.items() if b not in blocks_removed}
            memo.blocks.update(blocks_added)
        return memo

    def save(self, cache_dir: Path | None, name: str) -> str:
        """Keep the records of this build's rows only (so the memo never outgrows the table); return
        the token of the memo now stored ("" when none could be kept)."""
        if cache_dir is None:
            return ""
        unchanged = len(self.used) == len(self.stored) and self.blocks_used.keys() == self.blocks.keys()
        if not self.computed and unchanged and self.carry_next == self.carry:
            return self.token  # the stored memo is exactly this one
        folder = cache_dir / FOLDER
        token = secrets.token_hex(16)
        base = self.base
        added = {d: r for d, r in self.used.items() if base.get(d) is not r}  # new, or computed anew
        removed = base.keys() - self.used.keys()
        delta = folder / f"{name}.delta.pickle"
        as_delta = bool(self.base_token) and len(added) + len(removed) <= max(64, len(self.used) // 8)
        if as_delta:
            carry_added, carry_removed = self.carry_next - self.base_carry, self.base_carry - self.carry_next
            blocks_added = {b: d for b, d in self.blocks_used.items() if self.base_blocks.get(b) != d}
            blocks_removed = self.base_blocks.keys() - self.blocks_used.keys()
            changes = (added, removed, carry_added, carry_removed, token, blocks_added, blocks_removed)
            content: tuple = (self.base_token, *changes)
            target = delta
        else:
            content, target = (self.used, self.carry_next, token, self.blocks_used), folder / f"{name}.pickle"
        try:  # a memo that cannot be kept costs the next build time, never this build
            data = pickle.dumps((FORMAT, self.key, content), protocol=pickle.HIGHEST_PROTOCOL)
            folder.mkdir(parents=True, exist_ok=True)
            temporary = folder / f".{target.name}.tmp"
            temporary.write_bytes(data)
            temporary.replace(target)
            if not as_delta:
                delta.unlink(missing_ok=True)  # written against the old base
        except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
            return ""
        return token

    def note_lookup(self, relative: str, present: bool, refused: bool) -> None:
        """Called by ``ctx.exists``: a refusal is reported once per build, so such a row is not kept."""
        if self.lookups is not None:
            self.lookups.append((relative, present))
            self.uncachable |= refused

    def note_named(self, name: str, paths: tuple[str, ...]) -> None:
        """Called by ``ctx.files_named``: the row depends on every file of that name."""
        if self.lookups is not None:
            self.lookups.append((NAMED + name, paths))


def _read(path: Path, key: str) -> tuple | None:
    """The content of a memo file of this format and key; None if absent, another's, or unreadable."""
    try:
        with open(path, "rb") as handle:
            version, stored_key, content = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError):
        return None
    return content if version == FORMAT and stored_key == key and isinstance(content, tuple) else None


def _digest(produce: Callable, row: dict[str, str], args: tuple) -> bytes:
    """SHA-256 of the function's name, the header, every cell but ``_row`` (with its length: no two
    rows read alike), and the arguments."""
    names = tuple(row)
    return _cells_digest(_header(produce, names) + "\x1e", [row[k] for k in names if k != "_row"], f"\x1e{args!r}")


def _cells_digest(before: str, cells: list[str], after: str) -> bytes:
    lengths = ",".join(map(str, map(len, cells)))
    return hashlib.sha256(
        (before + lengths + "\x1e" + "".join(cells) + after).encode("utf-8", "surrogatepass")
    ).digest()


def row_tuples(frame) -> Iterator[tuple]:
    """A frame's rows as tuples of Python objects, each column converted once (not one Arrow string at a time)."""
    return zip(*(frame.iloc[:, i].to_numpy(dtype=object) for i in range(frame.shape[1])), strict=True)


@lru_cache(maxsize=64)
def _header(produce: Callable, names: tuple[str, ...]) -> str:
    return f"{produce.__module__}.{produce.__qualname__}\x1e{tuple(n for n in names if n != '_row')!r}"


def replay_or_run(ctx: SourceContext, memo: RowMemo, row: dict[str, str], produce: Callable, args: tuple) -> Iterator:
    """The entries of ``produce(ctx, row, *args)``, from the memo when the row and its file answers are the same."""
    where = row.get("_row", "")
    digest = _digest(produce, row, args)
    record = memo.stored.get(digest)
    if record is not None and _still_holds(record, ctx):
        yield from _replay(ctx, memo, digest, record, where)
    else:
        yield from _run(ctx, memo, digest, row, produce, args)


@dataclass(slots=True)
class MemoRow:
    """One table row as ``row_blocks.replay_rows`` hands it to a builder that carries rows (``memo.bulk``).

    ``record`` is set for a replayed row (its entries as recorded values, see
    :func:`entry_of`), ``entries`` for a computed one. The row's problems are already reported.
    """

    digest: bytes
    where: str
    record: Record | None = None
    entries: list | None = None

    def values(self) -> tuple[tuple, ...]:
        """The recorded field values of a replayed row's entries (``()`` for a computed row)."""
        return self.record[0] if self.record is not None else ()


def entry_of(values: tuple, where: str) -> Entry:
    """A replayed entry from its recorded field values and the row's current ``<file> line N``."""
    entry = Entry(*values)
    if entry.row is _HERE:
        entry.row = where
    entry.extra = dict(entry.extra)
    return entry


def _still_holds(record: Record, ctx: SourceContext) -> bool:
    """True when every file question the row asked gets the same answer in this checkout."""
    files = ctx.file_set
    for question, answer in record[2]:
        if question.startswith(NAMED):
            if ctx.files_named(question[1:]) != answer:
                return False
        elif (question in files) != answer:
            return False
    return True


def _replay_problems(ctx: SourceContext, memo: RowMemo, digest: bytes, record: Record, where: str) -> None:
    memo.used[digest] = record
    memo.replayed += 1
    report_recorded(ctx, record, where)


def report_recorded(ctx: SourceContext, record: Record, where: str) -> None:
    """Report again the problems a replayed row reported when computed, at its current ``<file> line N``."""
    for message, path, at, level in record[1]:
        ctx.report(message, path=path, row=where if at is _HERE else at, level=level)


def _replay(ctx: SourceContext, memo: RowMemo, digest: bytes, record: Record, where: str) -> Iterator:
    _replay_problems(ctx, memo, digest, record, where)
    for values in record[0]:
        yield entry_of(values, where)


def _run(
    ctx: SourceContext, memo: RowMemo, digest: bytes, row: dict[str, str], produce: Callable, args: tuple
) -> Iterator:
    memo.computed += 1
    where = row.get("_row", "")
    before = len(ctx.problems)
    memo.lookups, memo.uncachable = [], False
    try:
        entries = list(produce(ctx, row, *args))
    finally:
        lookups, memo.lookups = memo.lookups, None
    reported = ctx.problems[before:]
    record = _record(entries, reported, tuple(lookups), where, memo.pool)
    if record is not None and not memo.uncachable:
        memo.used[digest] = record
    yield from entries


#: Longest cell shared between records: a table repeats its short values ("xray", "PA", a finding).
_SHORT = 32


def _shared(value: object, pool: dict[str, str]) -> object:
    """``value``, or the equal short string already recorded: pickle writes an object it has written
    before as a reference, so the stored memo holds each repeated cell once and loads without
    making it again (50,000 NIH rows: 11.6 -> 9.0 MB, 0.076-0.082 -> 0.062-0.064 s to load)."""
    return pool.setdefault(value, value) if type(value) is str and len(value) <= _SHORT else value


def _record(
    entries: list, reported: tuple[Problem, ...], lookups: tuple, where: str, pool: dict[str, str]
) -> Record | None:
    """The row's record with its line taken out; None when the line shows up anywhere else (not replayable)."""
    stored_entries = []
    for entry in entries:
        if not isinstance(entry, Entry):
            return None  # the builder refuses it; nothing to remember
        values = [_shared(getattr(entry, name), pool) for name in _ENTRY_FIELDS]
        values[_EXTRA_AT] = {_shared(k, pool): _shared(v, pool) for k, v in entry.extra.items()}
        if values[_ROW_AT] == where:
            values[_ROW_AT] = _HERE
        shown = [v for v in values if isinstance(v, str)] + [repr(entry.extra)] if where else []
        if any(where in v for v in shown):
            return None
        stored_entries.append(tuple(values))
    problems = []
    for problem in reported:
        if where and (where in problem.message or where in problem.path):
            return None
        at = _HERE if problem.row == where else problem.row
        problems.append((problem.message, problem.path, at, _shared(problem.level, pool)))
    return tuple(stored_entries), tuple(problems), tuple((_shared(path, pool), answer) for path, answer in lookups)
