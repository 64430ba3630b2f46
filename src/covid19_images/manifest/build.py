"""Build the unified manifest from the source checkouts, doing only the work that changed.

Per source (:mod:`covid19_images.manifest.source_build`): parse, keep paths inside the source
folder, probe files whose git blob is new, scrub identifying values. A source whose commit,
code and registry entry match the last build's cache (:mod:`covid19_images.manifest.source_cache`)
is not read at all: its rows come from the previous manifest and its problems from the cache.
Duplicate search reuses the near-duplicate index of the last build, so only new files are
searched. ``rebuild=True`` turns every shortcut off; the result is byte-identical either way
(tests/manifest/test_incremental.py proves it on random upstream changes).

The builder never fails as a whole because of one bad input: each problem is recorded with
source, file and row.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import pandas as pd

from covid19_images.core.failpoints import checkpoint
from covid19_images.core.schema import MANIFEST_COLUMNS, Problem
from covid19_images.manifest import integrity, privacy
from covid19_images.manifest.annotations import PREVIOUS_NOT_KEPT, annotations_bytes, join_annotations
from covid19_images.manifest.diff import SourceChange, diff_manifests
from covid19_images.manifest.duplicates import CONFIRM_MSE, NEAR_ACCEPT, NEAR_CANDIDATE, find_duplicates
from covid19_images.manifest.io import (
    ANNOTATIONS_FILE,
    MANIFEST_FILE,
    MANIFEST_IDENTITY,
    MANIFEST_SHA256,
    PROBLEM_COLUMNS,
    PROBLEMS_FILE,
    empty_manifest,
    in_manifest_order,
    manifest_bytes,
    problems_bytes,
    read_manifest,
    remove_stale_temporaries,
    rows_at,
    text_dtype,
    write_atomic,
)
from covid19_images.manifest.near_index import NearIndex
from covid19_images.manifest.result import BuildResult
from covid19_images.manifest.reviews import overridden_problems, read_reviews
from covid19_images.manifest.secret_guard import Guard, guard_hits, guard_of
from covid19_images.manifest.source_build import (
    ROW_COLUMNS,
    ParserFailed,
    build_source,
    head_commit,
    image_id,
)
from covid19_images.manifest.source_cache import SourceCache, SourceEntry, checkout_is_clean, source_key
from covid19_images.manifest.splits import assign_splits
from covid19_images.manifest.unchanged import (
    UNSETTLED,
    input_signatures,
    is_checked_out,
    record_build,
    seal_build,
)
from covid19_images.sources.portal.state import presence
from covid19_images.sources.registry import SourceSpec
from covid19_images.sources.row_memo import RowMemo

__all__ = [
    "ANNOTATIONS_FILE",
    "MANIFEST_FILE",
    "PROBLEMS_FILE",
    "PROBLEM_COLUMNS",
    "BuildResult",
    "SourceChange",
    "build_manifest",
    "diff_manifests",
    "empty_manifest",
    "image_id",
    "manifest_bytes",
    "problems_bytes",
    "read_manifest",
    "remove_stale_temporaries",
    "write_atomic",
    "write_manifest",
]


#: the warning of a build that could not trust the stored near-duplicate index
INDEX_DISTRUSTED = "the stored near-duplicate index was not reused"


def _settled(problems: list[Problem]) -> bool:
    """False when this build repaired a damaged file or cache: the next one, from what this one
    writes, will not say so again, so this one must not be reused as it is (manifest.unchanged)."""
    return not any(p.source == "" and p.message.startswith((PREVIOUS_NOT_KEPT, INDEX_DISTRUSTED)) for p in problems)


def write_manifest(root: Path, result: BuildResult, cache_dir: Path | None = None) -> None:
    """Problems first, manifest last: the manifest is the record, replaced only when all else is written.

    With ``cache_dir``, the build's caches are saved after the manifest, tied to its bytes.
    """
    if result.files_current:
        return  # every file on disk is this build's, checked by hash (manifest.unchanged)
    write_atomic(Path(root) / PROBLEMS_FILE, problems_bytes(result.problems))
    checkpoint("write.problems-done")
    annotations = annotations_bytes(result.annotations)
    rows = len(result.annotations) if result.annotations is not None else None
    integrity.write_record(Path(root) / ANNOTATIONS_FILE, annotations, rows)  # verify and the loaders check it
    write_atomic(Path(root) / ANNOTATIONS_FILE, annotations)
    if result.unchanged and result.cache is not None and result.cache.manifest_sha256:
        digest = result.cache.manifest_sha256  # the same bytes are on disk already
    else:
        data = manifest_bytes(result.manifest)
        digest = integrity.write_record(Path(root) / MANIFEST_FILE, data, len(result.manifest), result.replaces)
        write_atomic(Path(root) / MANIFEST_FILE, data)
        checkpoint("write.manifest-done")
    if cache_dir is not None:
        if result.near_index is not None:
            result.near_index.save(cache_dir)
        if result.cache is not None:
            seal_build(Path(root), result.cache)
            result.cache.save(cache_dir, digest)


def _rows_by_source(previous: pd.DataFrame) -> Callable[[str], pd.DataFrame]:
    """Source -> its rows of the previous manifest, found in one pass over the column.

    Comparing the whole column and taking every column once per source cost 0.4 s for 14
    sources at 50,000 rows; a written manifest holds each source's rows together, so they are
    a slice (no copy), and a take only where they are not.
    """
    positions = previous.groupby("source", sort=False).indices if len(previous) else {}

    def rows_of(name: str) -> pd.DataFrame:
        where = positions.get(name)
        return previous.iloc[0:0] if where is None else rows_at(previous, where)

    return rows_of


def build_manifest(
    root: Path,
    registry: dict[str, SourceSpec],
    previous: pd.DataFrame | None = None,
    *,
    progress: bool = True,
    workers: int | None = None,
    keep: Collection[str] = (),
    cache_dir: Path | None = None,
    rebuild: bool = False,
    clean: Mapping[str, bool] | None = None,
    reread: Collection[str] = (),
) -> BuildResult:
    """Build the whole manifest from the checkouts under ``root``.

    Sources named in ``keep`` (sync refused to update them because their checkout is not
    what their pin says) keep their previous rows verbatim. ``previous`` keeps split groups
    stable and, unless ``rebuild``, lends the facts of unchanged git blobs; ``cache_dir``
    (unless ``rebuild``) lends whole unchanged sources and the near-duplicate index.
    ``clean`` holds what sync already learnt of checkouts (source -> exactly its commit), so
    git is not asked twice. Sources named in ``reread`` are read even when their cache entry holds.

    A source whose files carry identifying values is reused with a guard of them
    (:mod:`covid19_images.manifest.secret_guard`) instead of the values; when a problem of the
    build may hold one, or another source's values are read, it is built again, reading them.
    """
    root = Path(root)
    previous = previous if previous is not None else empty_manifest()
    rows_of = _rows_by_source(previous)
    use_cache = cache_dir is not None and not rebuild
    # the hash of the bytes ``previous`` was read from (read_manifest checked them), not the file's again
    read_from = previous.attrs.get(MANIFEST_SHA256)
    use_entries = use_cache and len(previous)
    cache = SourceCache.load(cache_dir, root / MANIFEST_FILE, read_from) if use_entries else SourceCache()
    lender = empty_manifest() if rebuild else previous  # lends the probe results of unchanged git blobs
    problems: list[Problem] = []
    parts: list[pd.DataFrame] = []
    commits: dict[str, str] = {}
    secrets: set[str] = set()
    probed = 0
    fresh_cache = SourceCache()
    reused: list[str] = []
    known_clean = dict(clean or {})
    reparsed: dict[str, int] = {}  # source -> metadata rows its parser computed again (row memo)
    carried: dict[str, int] = {}  # source -> rows taken from the previous manifest (row carry)
    blocks: dict[str, int] = {}  # source -> blocks of metadata rows replayed whole (row blocks)
    guarded: dict[str, Guard] = {}  # reused source -> the guard of its identifying values

    for spec in registry.values():
        directory = root / spec.path
        if spec.name in keep or directory.is_symlink():
            old = rows_of(spec.name)
            reason = (
                f"{spec.path} is a symlink; refused (a source folder must be its submodule checkout)"
                if directory.is_symlink()
                else "sync refused to update it (see the sync summary)"
            )
            problems.append(
                Problem(
                    spec.name,
                    f"{reason}; kept its {len(old)} rows from the previous manifest",
                    level="error" if directory.is_symlink() else "warning",
                )
            )
            parts.append(old)
            continue
        fetched = presence(root, spec.name) if spec.is_portal else None
        if fetched is not None and not fetched.complete:
            old = rows_of(spec.name)
            problems.append(Problem(spec.name, fetched.unread_message(spec.name, len(old))))
            parts.append(old)
            continue
        if fetched is None and not is_checked_out(directory):
            old = rows_of(spec.name)
            problems.append(
                Problem(
                    spec.name,
                    f"not checked out; run `git submodule update --init {spec.path}` "
                    f"or `covid19-images sync {spec.name}`"
                    + (f" (kept its {len(old)} rows from the previous manifest)" if len(old) else ""),
                )
            )
            parts.append(old)
            continue
        commit = fetched.digest if fetched is not None else head_commit(directory)
        commits[spec.name] = commit
        if fetched is None and spec.name not in known_clean:
            known_clean[spec.name] = checkout_is_clean(directory)
        is_clean = fetched is not None or known_clean[spec.name]
        key = source_key(spec, commit) if commit and cache_dir is not None and is_clean else ""
        entry = cache.entries.get(spec.name)
        old = rows_of(spec.name)
        guard = Guard.from_json(entry.guard) if entry is not None and entry.guard is not None else None
        # an entry with a guard is reused only when the guard reads (a damaged one: read the source)
        usable = entry is not None and (entry.guard is None or guard is not None) and spec.name not in reread
        if key and usable and entry.key == key and entry.rows == len(old):
            if guard is not None:
                guarded[spec.name] = guard
            problems.extend(Problem(**vars(p)) for p in entry.problems)
            parts.append(old)
            fresh_cache.entries[spec.name] = entry
            reused.append(spec.name)
            checkpoint("build.source-parsed")
            continue
        try:
            memo = RowMemo.load(cache_dir, spec.name, source_key(spec, "")) if use_cache else None
            # rows are carried only from the manifest the memo's build wrote (manifest.row_carry)
            same_build = memo is not None and entry is not None and bool(memo.token) and entry.memo == memo.token
            lent = old if same_build else None
            built = build_source(
                root, spec, lender, workers=workers, progress=progress, memo=memo, previous=lent, clean=is_clean
            )
        except Exception as err:  # noqa: BLE001 - a crashing parser must not take the build down
            if isinstance(err, ParserFailed):
                problems.extend(err.problems)  # what it reported before failing
            cause = str(err) if isinstance(err, ParserFailed) else f"{type(err).__name__}: {err}"
            message = f"parser {spec.parser} failed: {cause}; kept {len(old)} previous rows"
            problems.append(Problem(spec.name, message, level="error"))
            parts.append(old)
            continue
        probed += built.probed
        token = ""
        if memo is not None:
            reparsed[spec.name] = memo.computed
            carried[spec.name] = memo.carried
            blocks[spec.name] = memo.blocks_replayed
            if not built.secrets:  # no record of a source whose files hold identifying values
                token = memo.save(cache_dir, spec.name)
        secrets |= built.secrets
        problems.extend(built.problems)
        parts.append(built.rows)
        if key:
            saved = [Problem(**vars(p)) for p in built.problems]
            kept = guard_of(built.secrets).to_json() if built.secrets else None
            fresh_cache.entries[spec.name] = SourceEntry(key, len(built.rows), saved, token, kept)

    privacy.redact_problems(problems, secrets)
    # a guarded entry keeps its problems as written: redacted, never holding the values
    privacy.redact_problems([p for e in fresh_cache.entries.values() if e.guard for p in e.problems], secrets)
    if guarded and (secrets or guard_hits([str(t) for p in problems for t in (p.message, p.path, p.row)], guarded)):
        again = {"progress": progress, "workers": workers, "keep": keep, "cache_dir": cache_dir, "rebuild": rebuild}
        return build_manifest(root, registry, previous, **again, clean=known_clean, reread={*reread, *guarded})
    checkpoint("build.privacy-checked")
    reviews = read_reviews(root)
    fresh_cache.reviews_sha256 = reviews.digest
    same_reviews = cache.reviews_sha256 == reviews.digest
    if reused and len(reused) == len(registry) and set(previous["source"]) == set(reused) and same_reviews:
        # nothing changed anywhere: the previous manifest is exactly what a rebuild would give
        fresh_cache.manifest_sha256 = cache.manifest_sha256
        manifest = previous[list(MANIFEST_COLUMNS)].reset_index(drop=True)
        signatures = input_signatures(root, registry, keep, known_clean)
        readers = cache_dir if use_cache else None
        annotations = _join_annotations(root, registry, manifest, commits, problems, progress, signatures, readers)
        result = BuildResult(manifest, problems, commits, 0, reused, fresh_cache, None, True, annotations)
        result.replaces = _read_state(previous)
        if _settled(problems):
            record_build(result, signatures, _row_commits(manifest, registry))
        return result
    # every part as Arrow text before they are joined: a part of Python strings would turn the
    # whole concatenation into Python strings (0.4 s at 200,000 rows) only to be converted back;
    # and in the manifest's order (_in_order), so that the final sort finds nothing to move
    frames = _in_order([f[list(ROW_COLUMNS)].astype(text_dtype()) for f in parts if not f.empty])
    manifest = pd.concat(frames, ignore_index=True) if frames else empty_manifest()
    manifest = manifest.reindex(columns=list(MANIFEST_COLUMNS)).astype(text_dtype()).fillna("")
    index = None
    if not manifest.empty:
        stored = NearIndex.load(cache_dir, index_settings()) if use_cache else None
        duplicates = find_duplicates(manifest, root, index=stored, reviews=reviews)
        manifest["dup_group"] = duplicates.groups
        problems.extend(overridden_problems(manifest, duplicates.overruled))
        index = duplicates.index
        if index is not None and index.distrusted:
            message = f"{INDEX_DISTRUSTED} ({index.distrusted}); searched afresh"
            problems.append(Problem("", message, level="warning"))
        assign_splits(manifest, previous, shared_patients=_shared_patients(registry))
        manifest = in_manifest_order(manifest).reset_index(drop=True)
    signatures = input_signatures(root, registry, keep, known_clean)
    readers = cache_dir if use_cache else None
    annotations = _join_annotations(root, registry, manifest, commits, problems, progress, signatures, readers)
    result = BuildResult(manifest, problems, commits, probed, reused, fresh_cache, index, False, annotations)
    result.reparsed, result.carried, result.blocks = reparsed, carried, blocks
    result.replaces = _read_state(previous)
    if _settled(problems):
        record_build(result, signatures, _row_commits(manifest, registry))
    return result


def _read_state(previous: pd.DataFrame) -> tuple[str, tuple[int, ...]] | None:
    """The digest and file identity of the manifest ``previous`` was read from (None if not read from one)."""
    digest, identity = previous.attrs.get(MANIFEST_SHA256), previous.attrs.get(MANIFEST_IDENTITY)
    return (digest, identity) if digest and identity else None


def _in_order(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Each source's rows by path, the sources by name: joined, they are in the manifest's order.

    Joining Arrow columns shares their buffers, so the join costs nothing, whereas sorting the
    joined manifest moved every cell (0.07-0.2 s at 200,000 rows). A part is one source's rows
    (``build_manifest`` appends one per source), most of them already by path (kept from the
    previous manifest); the part a change rebuilt is sorted alone. The manifest's own sort stays
    and is what promises the order: it checks and finds every row in place.
    """
    by_path = [in_manifest_order(frame) for frame in frames]
    return sorted(by_path, key=lambda frame: str(frame["source"].iat[0]))


def _shared_patients(registry: dict[str, SourceSpec]) -> dict[str, str]:
    """Source -> the patient namespace it shares with other sources of this registry (catalog fact)."""
    from covid19_images.sources.catalog import patient_namespaces

    return {name: space for name, space in patient_namespaces().items() if name in registry}


def _row_commits(manifest: pd.DataFrame, registry: dict[str, SourceSpec]) -> dict[str, str]:
    """Portal source -> the first of its rows' commits (lock digests), as sync reports its old pin."""
    portal = [name for name, spec in registry.items() if spec.is_portal]
    rows = manifest[manifest["source"].isin(portal)]
    return {name: min(group[group != ""], default="") for name, group in rows.groupby("source")["source_commit"]}


def _join_annotations(
    root: Path,
    registry: dict[str, SourceSpec],
    manifest: pd.DataFrame,
    commits: dict[str, str],
    problems: list[Problem],
    progress: bool,
    signatures: dict[str, str],
    cache_dir: Path | None,
) -> pd.DataFrame:
    """Annotations follow the duplicate groups, so they are joined on every build; an unchanged
    source's reader output comes from ``cache_dir`` under its key (``manifest.annotation_cache``)."""
    keys = {name: key for name, key in signatures.items() if ":" not in key and key != UNSETTLED}
    annotations, joined_problems = join_annotations(
        root, registry, manifest, commits, progress=progress, keys=keys, cache_dir=cache_dir
    )
    problems.extend(joined_problems)
    return annotations


def index_settings() -> dict:
    from covid19_images.manifest.duplicates import _settings

    return _settings(NEAR_ACCEPT, NEAR_CANDIDATE, CONFIRM_MSE, True)  # the build decodes files: confirmed
