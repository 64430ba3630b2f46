"""Build, read, write and compare the unified manifest.

The builder runs each source's parser over its checkout, keeps paths inside the source
folder, probes every new file once (hash, real format, geometry, fingerprints) and reuses
the previous manifest's facts for files whose git blob is unchanged. It never fails as a
whole because of one bad input: each problem is recorded with source, file and row.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import git
import pandas as pd
from tqdm.auto import tqdm

from covid19_images.core.failpoints import checkpoint
from covid19_images.core.licenses import normalise_license
from covid19_images.core.paths import DATASETS_DIR, UnsafePath, safe_relative
from covid19_images.core.schema import LABELS, MANIFEST_COLUMNS, MODALITIES, PROBLEM_COLUMNS, Entry, Problem
from covid19_images.core.vocab import harmonise_finding
from covid19_images.imaging.fingerprints import PHASH_HEX
from covid19_images.imaging.probe import FileFacts, ProbeError, probe_file
from covid19_images.manifest import integrity, privacy
from covid19_images.manifest.annotations import ANNOTATIONS_FILE, annotations_bytes, join_annotations
from covid19_images.manifest.duplicates import assign_dup_groups
from covid19_images.manifest.splits import assign_splits
from covid19_images.sources.catalog import get_parser
from covid19_images.sources.parsing import SourceContext, list_files
from covid19_images.sources.registry import SourceSpec

MANIFEST_FILE = "manifests/manifest.csv"
PROBLEMS_FILE = "manifests/problems.csv"
_FACT_COLUMNS = ("sha256", "pixel_sha256", "phash", "format", "width", "height", "frames")


@dataclass
class BuildResult:
    manifest: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    commits: dict[str, str] = field(default_factory=dict)
    probed: int = 0  # files decoded in this build; unchanged git blobs reuse earlier facts
    annotations: pd.DataFrame | None = None  # manifests/annotations.csv (manifest.annotations)


def image_id(source: str, path: str) -> str:
    """Stable id from source + path: survives rebuilds, moves only when upstream renames."""
    return hashlib.sha1(f"{source}/{path}".encode()).hexdigest()[:16]


def empty_manifest() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in MANIFEST_COLUMNS})


def read_manifest(root: Path) -> pd.DataFrame | None:
    """The manifest as strings (``""`` for blank), or None if there is none yet."""
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        return None
    data = path.read_bytes()
    integrity.check(path, data)  # DamagedManifest (a ValueError) naming the file: conflict markers, cut rows
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
    for column in MANIFEST_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    return frame[list(MANIFEST_COLUMNS)]


_TEMPORARY_OF = (MANIFEST_FILE, PROBLEMS_FILE, ANNOTATIONS_FILE)


def write_atomic(path: Path, data: bytes) -> None:
    """Write-then-rename in the same folder: readers see the old file or the new one, never half.

    The data is fsynced before the rename and the folder after it, so even a power cut
    leaves one complete version. A process killed mid-write leaves only a ``.<name>.*.tmp``
    file, which the next sync removes (:func:`remove_stale_temporaries`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            checkpoint("write.tmp-written")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~integrity.current_umask())  # mkstemp makes 0600; shared roots need the umask's mode
        checkpoint("write.fsynced")
        os.replace(tmp, path)
        checkpoint("write.replaced")
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    ordered = frame[list(MANIFEST_COLUMNS)].sort_values(["source", "path"], kind="mergesort")
    return ordered.to_csv(index=False, lineterminator="\n").encode("utf-8")


def problems_bytes(problems: Iterable[Problem]) -> bytes:
    rows = [[getattr(p, column) for column in PROBLEM_COLUMNS] for p in problems]
    return pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS)).to_csv(index=False, lineterminator="\n").encode()


def write_manifest(root: Path, result: BuildResult) -> None:
    """Problems first, manifest last: the manifest is the record, replaced only when all else is written."""
    write_atomic(Path(root) / PROBLEMS_FILE, problems_bytes(result.problems))
    checkpoint("write.problems-done")
    write_atomic(Path(root) / ANNOTATIONS_FILE, annotations_bytes(result.annotations))
    data = manifest_bytes(result.manifest)
    integrity.write_record(Path(root) / MANIFEST_FILE, data)
    write_atomic(Path(root) / MANIFEST_FILE, data)
    checkpoint("write.manifest-done")


def _checkout_state(directory: Path) -> tuple[str, dict[str, str], set[str]]:
    """(HEAD commit, tracked path -> blob id, locally modified paths) of a source checkout."""
    if not (directory / ".git").exists():
        return "", {}, set()
    try:
        repo = git.Repo(directory)
        commit = repo.head.commit.hexsha
        blobs: dict[str, str] = {}
        for line in repo.git.ls_files("-s", "-z").split("\0"):
            if line:
                meta, path = line.split("\t", 1)
                blobs[path] = meta.split()[1]
        modified = set(repo.git.diff("--name-only", "-z").split("\0")) - {""}
        return commit, blobs, modified
    except (git.GitError, ValueError):
        return "", {}, set()


def _is_checked_out(directory: Path) -> bool:
    return directory.is_dir() and any(p.name != ".git" for p in directory.iterdir())


def _rows_for_source(
    spec: SourceSpec, directory: Path, problems: list[Problem]
) -> tuple[list[tuple[Entry, str]], list[str]]:
    """Run the parser; return (entry, safe relative path) pairs and the file list.

    What the parser reported (``ctx.report``) is added to ``problems`` even when it crashes
    half-way; anything it yields that is not an :class:`Entry` is a parser bug (a problem
    must be reported, not yielded) and fails the source like a crash.
    """
    ctx = SourceContext(spec, directory, list_files(directory))
    parse = get_parser(spec.parser)
    pairs: list[tuple[Entry, str]] = []
    checked: list[Problem] = []
    seen: set[str] = set()
    try:
        for item in parse(ctx):
            if not isinstance(item, Entry):
                raise TypeError(f"parse() yielded a {type(item).__name__}; it yields Entry rows and reports problems")
            try:
                clean = safe_relative(directory, item.path).as_posix()
            except UnsafePath as err:
                checked.append(Problem(spec.name, f"refused: {err}", path=item.path, row=item.row, level="error"))
                continue
            if not (directory / clean).is_file():
                checked.append(Problem(spec.name, "metadata points at a missing file", path=clean, row=item.row))
                continue
            if item.modality not in MODALITIES:
                checked.append(Problem(spec.name, f"unknown modality {item.modality!r}", path=clean, row=item.row))
                continue
            if clean in seen:
                checked.append(
                    Problem(spec.name, "file listed more than once; first row kept", path=clean, row=item.row)
                )
                continue
            seen.add(clean)
            pairs.append((item, clean))
    finally:
        problems.extend(ctx.problems)
        problems.extend(checked)
    return pairs, ctx.files


def _in_source(row: dict[str, str]) -> str:
    """A manifest row's path relative to its source folder, as every ``Problem.path`` is."""
    return row["path"].removeprefix(f"{DATASETS_DIR}/{row['source']}/")


def _entry_row(spec: SourceSpec, commit: str, relative: str, entry: Entry, blob: str) -> dict[str, str]:
    label = entry.label
    detail = entry.label_detail
    if label is None:
        label, derived_detail, _known = harmonise_finding(entry.finding)
        detail = detail or derived_detail
    if label not in LABELS:
        label = "unknown"
    path = f"{spec.path}/{relative}"
    raw_patient = entry.patient_id.strip()
    return {
        "image_id": image_id(spec.name, relative),
        "source": spec.name,
        "source_commit": commit,
        "path": path,
        "git_blob": blob,
        "modality": entry.modality,
        "view": entry.view or "unknown",
        "label": label,
        "label_detail": detail,
        "finding": entry.finding,
        "patient_id": f"{spec.name}:{raw_patient}" if raw_patient else f"{spec.name}:file:{relative}",
        "age": "" if entry.age is None else f"{entry.age:g}",
        "sex": entry.sex,
        "license": normalise_license(entry.license, spec.license),
        "official_split": entry.official_split,
        "extra": json.dumps(entry.extra, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        if entry.extra
        else "",
    }


def build_manifest(
    root: Path,
    registry: dict[str, SourceSpec],
    previous: pd.DataFrame | None = None,
    *,
    progress: bool = True,
    workers: int | None = None,
    keep: Collection[str] = (),
) -> BuildResult:
    """Rebuild the whole manifest from the checkouts under ``root``.

    Sources named in ``keep`` (sync refused to update them because their checkout is not
    what their pin says) keep their previous rows verbatim.
    """
    root = Path(root)
    previous = previous if previous is not None else empty_manifest()
    known_facts = {
        blob: row
        for blob, row in zip(previous["git_blob"], previous[list(_FACT_COLUMNS)].to_dict("records"), strict=True)
        # facts from a manifest written with another perceptual-hash size are recomputed
        if blob and (row["phash"] == "" or len(row["phash"]) == PHASH_HEX)
    }
    problems: list[Problem] = []
    rows: list[dict[str, str]] = []
    kept: list[pd.DataFrame] = []
    commits: dict[str, str] = {}
    to_probe: list[tuple[int, Path]] = []

    for spec in registry.values():
        directory = root / spec.path
        if spec.name in keep or directory.is_symlink():
            old = previous[previous["source"] == spec.name]
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
            kept.append(old)
            continue
        if not _is_checked_out(directory):
            old = previous[previous["source"] == spec.name]
            problems.append(
                Problem(
                    spec.name,
                    f"not checked out; run `git submodule update --init {spec.path}` "
                    f"or `covid19-images sync {spec.name}`"
                    + (f" (kept its {len(old)} rows from the previous manifest)" if len(old) else ""),
                )
            )
            kept.append(old)
            continue
        commit, blobs, modified = _checkout_state(directory)
        commits[spec.name] = commit
        try:
            pairs, _files = _rows_for_source(spec, directory, problems)
        except Exception as err:  # noqa: BLE001 - a crashing parser must not take the build down
            old = previous[previous["source"] == spec.name]
            problems.append(
                Problem(
                    spec.name,
                    f"parser {spec.parser} failed: {type(err).__name__}: {err}; kept {len(old)} previous rows",
                    level="error",
                )
            )
            kept.append(old)
            continue
        for entry, relative in pairs:
            blob = "" if relative in modified else blobs.get(relative, "")
            row = _entry_row(spec, commit, relative, entry, blob)
            facts = known_facts.get(blob) if blob else None
            if facts is not None:
                row.update(facts)
            else:
                to_probe.append((len(rows), directory / relative))
            row["_row"] = entry.row
            rows.append(row)
        checkpoint("build.source-parsed")

    failed: set[int] = set()

    def run(item: tuple[int, Path]) -> tuple[int, FileFacts | ProbeError]:
        index, path = item
        try:
            return index, probe_file(path)
        except ProbeError as err:
            return index, err

    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 1) * 2)) as pool:
        results = pool.map(run, to_probe)
        for index, outcome in tqdm(
            results, total=len(to_probe), desc="probing images", unit="img", disable=not progress or not to_probe
        ):
            checkpoint("build.probed")
            row = rows[index]
            if isinstance(outcome, ProbeError):
                failed.add(index)
                problems.append(
                    Problem(row["source"], str(outcome), path=_in_source(row), row=row["_row"], level="error")
                )
                continue
            row.update(
                sha256=outcome.sha256,
                pixel_sha256=outcome.pixel_sha256,
                phash=outcome.phash,
                format=outcome.format,
                width=str(outcome.width),
                height=str(outcome.height),
                frames=str(outcome.frames),
            )

    _keep_identifying_values_out(root, rows, failed, problems)
    fresh = pd.DataFrame([r for i, r in enumerate(rows) if i not in failed], columns=[*MANIFEST_COLUMNS, "_row"])
    fresh = fresh.drop(columns=["_row"]).astype(object).where(fresh.notna(), "").astype(str)
    frames = [f for f in (fresh, *kept) if not f.empty]
    manifest = pd.concat(frames, ignore_index=True) if frames else empty_manifest()
    manifest = manifest[list(MANIFEST_COLUMNS)].fillna("").astype(object)
    if not manifest.empty:
        manifest["dup_group"] = assign_dup_groups(manifest, root)
        assign_splits(manifest, previous)
        manifest = manifest.sort_values(["source", "path"], kind="mergesort").reset_index(drop=True)
    annotations, joined_problems = join_annotations(root, registry, manifest, commits, progress=progress)
    problems.extend(joined_problems)
    return BuildResult(manifest, problems, commits, probed=len(to_probe), annotations=annotations)


def _keep_identifying_values_out(
    root: Path, rows: list[dict[str, str]], failed: set[int], problems: list[Problem]
) -> None:
    """Check every DICOM row against its own file's identifying header values (privacy layer 2).

    A parser may copy a header value, or upstream metadata may repeat it (a CSV ``patientid``
    that is the hospital ID in the DICOM): either way it is removed here, a leaked patient
    ID becomes a pseudonym, a row whose file name itself is identifying is left out, and
    every problem message is redacted. Problems name the tags, never the values.
    """
    from covid19_images.imaging.formats import read_head, sniff_format

    secrets: set[str] = set()
    for index, row in enumerate(rows):
        full = root / row["path"]
        if index in failed:
            try:
                if sniff_format(read_head(full)) != "dicom":
                    continue
            except OSError:
                continue
        elif row.get("format") != "dicom":
            continue
        values = privacy.identifying_values(full)
        if not values:
            continue
        found = privacy.match_strings(values)
        secrets |= found
        if index in failed:
            continue
        if privacy.contains(row["path"], found):
            failed.add(index)
            problems.append(
                Problem(
                    row["source"],
                    "left out of the manifest: the file path contains an identifying DICOM header value "
                    f"({', '.join(values)}); rename it upstream",
                    path=privacy.redact(_in_source(row), found),
                    row=row["_row"],
                    level="error",
                )
            )
            continue
        changed = privacy.scrub_row(row, values)
        if changed:
            tags = ", ".join(k for k in values if k not in privacy.FLAG_KEYWORDS)
            problems.append(
                Problem(
                    row["source"],
                    f"identifying DICOM header values ({tags}) removed from column(s) {', '.join(changed)}",
                    path=_in_source(row),
                    row=row["_row"],
                    level="error",
                )
            )
    if secrets:
        for problem in problems:
            problem.message = privacy.redact(problem.message, secrets)
            problem.path = privacy.redact(problem.path, secrets)
            problem.row = privacy.redact(problem.row, secrets)
    checkpoint("build.privacy-checked")


@dataclass
class SourceChange:
    source: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    relabelled: list[tuple[str, str, str]] = field(default_factory=list)
    moved: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.relabelled or self.moved)


def diff_manifests(old: pd.DataFrame | None, new: pd.DataFrame) -> dict[str, SourceChange]:
    """Per source: image paths added and removed, (path, old, new) relabelled and split-moved."""
    old = old if old is not None else empty_manifest()
    before = old.set_index("image_id")
    after = new.set_index("image_id")
    changes: dict[str, SourceChange] = {}

    def change(source: str) -> SourceChange:
        return changes.setdefault(source, SourceChange(source))

    for key in after.index.difference(before.index):
        change(after.at[key, "source"]).added.append(after.at[key, "path"])
    for key in before.index.difference(after.index):
        change(before.at[key, "source"]).removed.append(before.at[key, "path"])
    common = after.index.intersection(before.index)
    for key in common:
        a, b = before.loc[key], after.loc[key]
        if a["label"] != b["label"]:
            change(b["source"]).relabelled.append((b["path"], a["label"], b["label"]))
        if a["split"] != b["split"]:
            change(b["source"]).moved.append((b["path"], a["split"], b["split"]))
    for item in changes.values():
        item.added.sort()
        item.removed.sort()
        item.relabelled.sort()
        item.moved.sort()
    return changes
