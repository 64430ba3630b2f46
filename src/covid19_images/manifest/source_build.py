"""One source's checkout to manifest rows: parse, keep paths inside, probe new blobs, scrub.

Everything per row is done on whole columns where it can be: facts of unchanged git blobs
are joined from the previous manifest in one merge, path checks resolve the source folder
once (:class:`~covid19_images.core.paths.SafePaths`), and only DICOM rows are opened again
for the privacy check.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import git
import numpy as np
import pandas as pd

from covid19_images.core.failpoints import checkpoint
from covid19_images.core.licenses import normalise_license
from covid19_images.core.paths import SafePaths, UnsafePath, source_relative
from covid19_images.core.progress import progress_bar
from covid19_images.core.schema import FACT_COLUMNS, LABELS, MODALITIES, ROW_COLUMNS, Entry, Problem
from covid19_images.core.vocab import harmonise_finding
from covid19_images.core.workers import default_workers
from covid19_images.imaging.fingerprints import PHASH_HEX
from covid19_images.imaging.probe import ProbeError, probe_file
from covid19_images.manifest import privacy
from covid19_images.manifest.row_carry import Listed, RowCarry, carry_block, landed_rows, with_carried
from covid19_images.sources.catalog import get_parser
from covid19_images.sources.git import head_commit as ref_head_commit
from covid19_images.sources.listing import FileList, tracked_listing
from covid19_images.sources.parsing import SourceContext, list_files
from covid19_images.sources.portal.lock import current_digest
from covid19_images.sources.registry import SourceSpec
from covid19_images.sources.row_blocks import MemoBlock
from covid19_images.sources.row_memo import PATH_AT, MemoRow, RowMemo, entry_of


def image_id(source: str, path: str) -> str:
    """Stable id from source + path: survives rebuilds, moves only when upstream renames."""
    return hashlib.sha1(f"{source}/{path}".encode()).hexdigest()[:16]


@dataclass
class SourceRows:
    """What one source contributes: its rows, its problems, and the identifying values it found."""

    rows: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    probed: int = 0


def checkout_state(directory: Path, clean: bool = False) -> tuple[str, dict[str, str], set[str], FileList | None]:
    """(HEAD commit, tracked path -> blob id, locally modified paths, its files or None) of a checkout.

    ``clean`` (git status found it exactly its commit): nothing is modified, and its files are its
    index's (:func:`~covid19_images.sources.listing.tracked_listing`; None: walk the folder).
    """
    if not (directory / ".git").exists():
        return "", {}, set(), None
    try:
        repo = git.Repo(directory)
        commit = git.SymbolicReference.dereference_recursive(repo, "HEAD")  # no cat-file process
        blobs: dict[str, str] = {}
        index = repo.git.ls_files("-s", "-v", "-z")
        for line in index.split("\0"):
            if line:
                meta, path = line.split("\t", 1)
                blobs[path] = meta.split()[2]
        if clean:
            return commit, blobs, set(), tracked_listing(index)
        modified = set(repo.git.diff("--name-only", "-z").split("\0")) - {""}
        return commit, blobs, modified, None
    except (git.GitError, ValueError):
        return "", {}, set(), None


def head_commit(directory: Path) -> str:
    """The checkout's commit from git's ref files (``Repo.head.commit`` starts a ``git cat-file``
    process to check the object: 14 of them cost 0.03 s of every changed sync)."""
    if not (directory / ".git").exists():
        return ""
    return ref_head_commit(directory) or ""


class ParserFailed(Exception):
    """A source's parser crashed; ``problems`` holds what it reported before, for problems.csv."""

    def __init__(self, cause: Exception, problems: list[Problem]) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.problems = problems


def _entries(
    spec: SourceSpec,
    directory: Path,
    problems: list[Problem],
    memo: RowMemo | None = None,
    carry: Callable[[SourceContext, bool], RowCarry | None] | None = None,
    listing: FileList | None = None,
) -> Listed:
    """Run the parser; return its entries with their safe relative paths, and the rows to carry.

    What the parser reported (``ctx.report``) is added to ``problems`` even when it crashes
    half-way; anything it yields that is not an :class:`Entry` is a parser bug (a problem
    must be reported, not yielded) and fails the source like a crash. ``carry`` makes the
    :class:`~covid19_images.manifest.row_carry.RowCarry` for the checkout's files. ``listing``: all
    of them, when its clean index says them (regular files only; anything else counts as missing).
    """
    ctx = SourceContext(spec, directory, listing if listing is not None else list_files(directory), memo=memo)
    files = ctx.file_set
    paths = SafePaths(directory, walk=listing is None)  # a listing from the index holds no symlink
    listed = Listed(carrier=carry(ctx, paths.links) if carry is not None else None)
    carrier = listed.carrier
    checked: list[Problem] = []
    seen: set[str] = set()

    def take(item: object, tag: tuple[bytes, int] | None) -> None:
        if not isinstance(item, Entry):
            raise TypeError(f"parse() yielded a {type(item).__name__}; it yields Entry rows and reports problems")
        try:
            clean = paths.check(item.path)
        except UnsafePath as err:
            checked.append(Problem(spec.name, f"refused: {err}", path=item.path, row=item.row, level="error"))
            return
        plain = clean in files and not paths.links
        # a listing from the index is complete: what git does not show is not looked for (via a link?)
        if not plain and (listing is not None or not (directory / clean).is_file()):
            checked.append(Problem(spec.name, "metadata points at a missing file", path=clean, row=item.row))
            return
        if item.modality not in MODALITIES:
            checked.append(Problem(spec.name, f"unknown modality {item.modality!r}", path=clean, row=item.row))
            return
        if clean in seen:
            checked.append(Problem(spec.name, "file listed more than once; first row kept", path=clean, row=item.row))
            return
        seen.add(clean)
        listed.pairs.append((item, clean))
        listed.order.append(listed.places())
        listed.tags.append(tag)

    def take_row(item: MemoRow) -> None:
        recorded = item.values()
        listed.entries_of[item.digest] = len(recorded) if item.record is not None else len(item.entries or ())
        for index, values in enumerate(recorded):
            path = values[PATH_AT]
            at = -1 if carrier is None or path in seen else carrier.position(item.digest, path)
            if at < 0:
                take(entry_of(values, item.where), (item.digest, index))
                continue
            seen.add(path)
            listed.carried.append((listed.places(), at, item.digest, index))
        for index, entry in enumerate(item.entries or ()):
            take(entry, (item.digest, index))

    try:
        for item in parse_items(spec, ctx):
            if isinstance(item, MemoRow):
                take_row(item)
            elif isinstance(item, MemoBlock):
                if not carry_block(listed, item, seen):
                    for row in item.rows():
                        take_row(row)
            else:
                take(item, None)
    finally:
        problems.extend(ctx.problems)
        problems.extend(checked)
    return listed


def parse_items(spec: SourceSpec, ctx: SourceContext) -> Iterator[object]:
    """The source parser's items: entries, and :class:`~covid19_images.sources.row_memo.MemoRow`
    rows and :class:`~covid19_images.sources.row_blocks.MemoBlock` blocks from a memo in bulk mode."""
    return get_parser(spec.parser)(ctx)


# Pure functions of a handful of distinct values, called once per row: remembered per value.
_license = lru_cache(maxsize=4096)(normalise_license)
_finding = lru_cache(maxsize=16384)(harmonise_finding)


#: ``extra`` as JSON: one encoder for every row (``json.dumps`` with options builds a new one per call)
_extra_json = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode
#: The columns of :func:`_entry_row`'s tuples: the manifest's own columns a parser decides, then ``_row``.
ENTRY_COLUMNS = (*(c for c in ROW_COLUMNS if c not in FACT_COLUMNS), "_row")


def _entry_row(spec: SourceSpec, commit: str, relative: str, entry: Entry, blob: str) -> tuple[str, ...]:
    """One entry's manifest values in :data:`ENTRY_COLUMNS` order (a tuple: 50,000 of them build a
    frame several times faster than dicts)."""
    label = entry.label
    detail = entry.label_detail
    if label is None:
        label, derived_detail, _known = _finding(entry.finding)
        detail = detail or derived_detail
    if label not in LABELS:
        label = "unknown"
    raw_patient = entry.patient_id.strip()
    return (
        image_id(spec.name, relative),
        spec.name,
        commit,
        f"{spec.path}/{relative}",
        blob,
        entry.modality,
        entry.view or "unknown",
        label,
        detail,
        entry.finding,
        f"{spec.name}:{raw_patient}" if raw_patient else f"{spec.name}:file:{relative}",
        "" if entry.age is None else f"{entry.age:g}",
        entry.sex,
        _license(entry.license, spec.license),
        entry.official_split,
        _extra_json(entry.extra) if entry.extra else "",
        entry.row,
    )


#: From this many new files on, probing runs in worker processes (all cores; decoding small
#: files is bound by the interpreter lock in threads); below it, start-up would cost more.
PROCESS_MIN = 5000
_CHUNK = 250


def _probe_chunk(paths: list[str]) -> list[list[str] | str]:
    """Facts of each file as manifest strings, or the probe error's message (runs in a worker)."""
    out: list[list[str] | str] = []
    for path in paths:
        try:
            facts = probe_file(Path(path))
        except ProbeError as err:
            out.append(str(err))
            continue
        out.append(
            [
                facts.sha256,
                facts.pixel_sha256,
                facts.phash,
                facts.format,
                str(facts.width),
                str(facts.height),
                str(facts.frames),
            ]
        )
    return out


def _probe_all(paths: list[str], workers: int | None) -> Iterator[list[str] | str]:
    """Probe results in the order of ``paths``: processes for many files, threads for a few.

    As many processes as cores this process may run on (``taskset`` and cgroup CPU sets count).
    """
    cores = default_workers()
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    if len(paths) >= PROCESS_MIN and cores > 1 and workers != 1:
        # fork: the workers need nothing but this module, and spawn would re-run the caller's
        # script in every worker when it lacks an ``if __name__ == "__main__"`` guard
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(max_workers=workers or cores, mp_context=context) as pool:
            for result in pool.map(_probe_chunk, chunks):
                yield from result
        return
    with ThreadPoolExecutor(max_workers=workers or min(8, cores * 2)) as pool:
        for result in pool.map(_probe_chunk, [[p] for p in paths]):
            yield from result


def known_facts(previous: pd.DataFrame, blobs: pd.Series | None = None) -> pd.DataFrame:
    """Probe results of the previous manifest by git blob (one row per blob), for reuse; only of
    ``blobs`` when given (a build that carries most rows needs the facts of a few).

    Facts written with another perceptual-hash size are left out, so they are recomputed.
    """
    if blobs is not None:
        previous = previous[previous["git_blob"].isin(blobs)]
    facts = previous.loc[previous["git_blob"] != "", ["git_blob", *FACT_COLUMNS]]
    facts = facts[(facts["phash"] == "") | (facts["phash"].str.len() == PHASH_HEX)]
    return within_budget(facts).drop_duplicates("git_blob").set_index("git_blob")


def within_budget(facts: pd.DataFrame) -> pd.DataFrame:
    """Facts the budgets in force would still accept: a file probed under a larger
    ``COVID19_IMAGES_MAX_*`` budget is probed again (and refused, with its problem), not
    lent its old facts; facts that are not whole numbers are probed again too."""
    from covid19_images.imaging.budget import max_frame_pixels, max_frames

    width = pd.to_numeric(facts["width"], errors="coerce")
    height = pd.to_numeric(facts["height"], errors="coerce")
    frames = pd.to_numeric(facts["frames"], errors="coerce").fillna(1)
    blank = (facts["width"] == "") & (facts["height"] == "")  # a file the previous build could not decode
    fits = (width * height <= max_frame_pixels()) & (frames <= max_frames())
    return facts[blank | fits.fillna(False)]


def build_source(
    root: Path,
    spec: SourceSpec,
    lender: pd.DataFrame,
    *,
    workers: int | None = None,
    progress: bool = True,
    memo: RowMemo | None = None,
    previous: pd.DataFrame | None = None,
    clean: bool = False,
) -> SourceRows:
    """Rows and problems of one checked-out source.

    ``lender`` is a manifest whose rows lend their probe results to files of the same git blob
    (the previous manifest; an empty one probes every file). ``memo`` holds the previous build's
    per-row parser records (:mod:`covid19_images.sources.row_memo`); it is updated with this
    build's. With it, ``previous`` (the source's rows of the previous manifest, given only when
    that manifest was written by the build that saved ``memo``) lends the finished rows of
    replayed entries (:mod:`covid19_images.manifest.row_carry`). ``clean``: the checkout is exactly its commit.

    A failing parser raises :class:`ParserFailed` carrying what it reported before failing;
    the caller keeps the source's old rows.
    """
    directory = root / spec.path
    listing = None
    if spec.is_portal:
        commit, blobs, modified = current_digest(root, spec.name), {}, set()  # the lock is its commit
    else:
        commit, blobs, modified, listing = checkout_state(directory, clean)
    problems: list[Problem] = []
    carry = None
    if memo is not None:
        memo.bulk = True
        if memo.carry and previous is not None and len(previous):

            def carry(ctx: SourceContext, links: bool) -> RowCarry | None:
                return None if links else RowCarry(spec.path, previous, memo.carry, ctx.file_set, blobs, modified)

    try:
        listed = _entries(spec, directory, problems, memo, carry, listing)
    except Exception as err:
        raise ParserFailed(err, problems) from err
    records = [
        _entry_row(spec, commit, relative, entry, "" if relative in modified else blobs.get(relative, ""))
        for entry, relative in listed.pairs
    ]
    frame = pd.DataFrame.from_records(records, columns=list(ENTRY_COLUMNS))
    facts = known_facts(lender, frame["git_blob"]) if len(lender) and len(frame) else None
    if facts is not None and len(facts):
        frame = frame.join(facts, on="git_blob")
    else:
        frame = frame.assign(**{c: None for c in FACT_COLUMNS})
    frame = frame[[*ROW_COLUMNS, "_row"]].astype(object)
    missing = frame["sha256"].isna().to_numpy() | (frame["git_blob"] == "").to_numpy()
    relative = frame.loc[missing, "path"].str[len(spec.path) + 1 :]
    to_probe = [(int(i), directory / r) for i, r in zip(relative.index, relative, strict=True)]
    failed: set[int] = set()
    probe_rows: dict[int, list[str]] = {}
    outcomes = _probe_all([str(path) for _, path in to_probe], workers)
    for (index, _path), outcome in progress_bar(
        zip(to_probe, outcomes, strict=True),
        asked=progress and bool(to_probe),
        total=len(to_probe),
        desc=f"probing {spec.name}",
        unit="img",
    ):
        checkpoint("build.probed")
        if isinstance(outcome, str):
            failed.add(index)
            problems.append(
                Problem(
                    spec.name,
                    outcome,
                    path=source_relative(frame.at[index, "path"], spec.name),
                    row=frame.at[index, "_row"],
                    level="error",
                )
            )
            continue
        probe_rows[index] = outcome
    if probe_rows:
        frame.loc[list(probe_rows), list(FACT_COLUMNS)] = list(probe_rows.values())
    frame = frame.where(frame.notna(), "")
    published = spec.options.get("published_ids") or ()
    secrets = privacy.scrub_rows(root, frame, failed, problems, published if isinstance(published, list) else ())
    keep = ~frame.index.isin(list(failed))
    rows = frame.loc[keep, list(ROW_COLUMNS)].reset_index(drop=True).astype(str)
    kept = np.flatnonzero(keep).tolist()
    if memo is not None:
        memo.carried = len(listed.carried)
        memo.carry_next = landed_rows(listed, kept, memo.used)
    if listed.carried:
        rows = with_carried(rows, [listed.order[i] for i in kept], listed, listed.carrier, commit)
    checkpoint("build.source-parsed")
    return SourceRows(rows, problems, secrets, probed=len(to_probe))
