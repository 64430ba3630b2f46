"""Join every source's annotations to the manifest's images: ``manifests/annotations.csv``.

Each source may ship an annotation reader, ``sources/catalog/<name>/annotations.py`` with
``read(ctx)`` yielding :class:`~covid19_images.core.annotation.Annotation` rows and
reporting problems through ``ctx.report`` (the parsers' contract). An annotation names where its image may be
(``targets``, in order of preference); the first target the manifest holds is the image
it was made on. From there it spreads through that image's duplicate group, so every copy
of the picture carries it whichever copy a loader keeps: scores and findings to every
copy, masks and boxes (pixel-aligned) only to copies of the same width, height and frame count, and
nothing to upstream's augmented copies (a mirrored copy would swap Brixia's lung sides).

An annotation whose image the manifest does not hold, or whose stated image size differs
from the image found, is a problem with its reason, never guessed onto another image.
Problems are grouped per annotation file row, so 14 Brixia scores of one missing image
are one line, not fourteen.
"""

from __future__ import annotations

import hashlib
import importlib
import io
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from covid19_images.core.annotation import ANNOTATION_COLUMNS, Annotation
from covid19_images.core.licenses import normalise_license
from covid19_images.core.progress import progress_bar
from covid19_images.core.schema import Problem, parse_extra
from covid19_images.manifest import annotation_cache, integrity
from covid19_images.manifest.csv_text import frame_csv_bytes
from covid19_images.manifest.integrity import DamagedManifest
from covid19_images.manifest.io import ANNOTATIONS_FILE
from covid19_images.sources.parsing import SourceContext, list_files
from covid19_images.sources.registry import SourceSpec

#: the warning of a build that found annotations.csv damaged (its next build will not repeat it)
PREVIOUS_NOT_KEPT = "previous annotations not kept"
#: kinds tied to pixel positions: they only spread to duplicate copies of the same size
PIXEL_KINDS = ("mask", "box")
ReadFn = Callable[[SourceContext], Iterator[Annotation]]


def reader_for(spec: SourceSpec) -> ReadFn | None:
    """The source's ``catalog/<name>/annotations.read``, or None when it has no annotations."""
    module = f"covid19_images.sources.catalog.{spec.name.replace('-', '_')}.annotations"
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and module.startswith(err.name):
            return None
        raise
    read = getattr(loaded, "read", None)
    return read if callable(read) else None


def empty_annotations() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in ANNOTATION_COLUMNS})


def read_annotations(root: Path) -> pd.DataFrame | None:
    """``manifests/annotations.csv`` as strings, or None if there is none yet.

    A file that does not match its integrity record, or that shows damage (merge conflict
    markers, a cut row), raises :class:`~covid19_images.manifest.integrity.DamagedManifest`
    naming it, as the manifest does.
    Columns the file lacks are filled with "" and named in ``frame.attrs["absent_columns"]``.
    """
    path = Path(root) / ANNOTATIONS_FILE
    if not path.is_file():
        return None
    data = path.read_bytes()
    integrity.check(path, data)
    return annotations_from_bytes(data)


def annotations_from_bytes(data: bytes) -> pd.DataFrame:
    """Checked ``annotations.csv`` bytes as the frame :func:`read_annotations` returns."""
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
    absent = [name for name in ANNOTATION_COLUMNS if name not in frame.columns]
    for name in absent:
        frame[name] = ""
    frame = frame[list(ANNOTATION_COLUMNS)]
    frame.attrs["absent_columns"] = absent  # filled with "" for readers; ``verify`` reports them
    return frame


def annotations_bytes(frame: pd.DataFrame | None) -> bytes:
    frame = frame if frame is not None else empty_annotations()
    ordered = frame[list(ANNOTATION_COLUMNS)].sort_values(
        ["image_id", "source", "path", "frame", "name", "rater", "annotation_id"], kind="mergesort"
    )
    return frame_csv_bytes(ordered)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _number(value: float) -> str:
    return f"{value:g}"


class _Joiner:
    """Lookups over one manifest: (source, path) -> row, dup group -> rows.

    Built on demand: a source's path table when an annotation first names that source, a
    duplicate group's members when an annotation first lands in it. A build pays for the
    annotated images, not for the 50,000 rows of a source that has no annotations.
    """

    def __init__(self, manifest: pd.DataFrame) -> None:
        self.rows = manifest.reset_index(drop=True)
        self._columns: dict[str, np.ndarray] = {}
        self._by_source = self.rows.groupby("source", sort=False).indices if len(self.rows) else {}
        self._paths: dict[str, dict[str, int]] = {}
        self._group_rows: dict[str, np.ndarray] | None = None
        self._members: dict[str, list[int]] = {}

    def _column(self, name: str) -> np.ndarray:
        if name not in self._columns:  # once per column: an Arrow string column converts in one C pass
            self._columns[name] = self.rows[name].to_numpy(dtype=object)
        return self._columns[name]

    def value(self, index: int, column: str) -> str:
        return str(self._column(column)[index])

    def row_of(self, source: str, path: str) -> int | None:
        """The last row of ``source`` at ``path`` (as a dict over every row would answer)."""
        if source not in self._paths:
            at = self._by_source.get(source, np.zeros(0, dtype=np.int64))
            paths = self._column("path")[at] if len(at) else []
            self._paths[source] = {str(p): i for p, i in zip(paths, at.tolist(), strict=True)}
        return self._paths[source].get(path)

    def group(self, group: str) -> list[int]:
        """The rows of a duplicate group but its augmented copies (rotated, zoomed, maybe mirrored:
        zone scores name a side), which get nothing."""
        if not group:
            return []
        if self._group_rows is None:
            groups = self.rows["dup_group"].astype(str).to_numpy(dtype=object)
            grouped = np.flatnonzero(groups != "")
            found = pd.Series(grouped).groupby(groups[grouped], sort=False).indices
            self._group_rows = {name: grouped[at] for name, at in found.items()}
        if group not in self._members:
            rows = self._group_rows.get(group, np.zeros(0, dtype=np.int64)).tolist()
            augmented = [str(parse_extra(self.value(i, "extra")).get("augmented", "")).lower() for i in rows]
            self._members[group] = [i for i, a in zip(rows, augmented, strict=True) if a not in ("true", "1", "yes")]
        return self._members[group]

    def size(self, index: int) -> tuple[str, str]:
        return self.value(index, "width"), self.value(index, "height")

    def shape(self, index: int) -> tuple[str, str, str]:
        """Width, height and frames: a mask of slice k fits only a copy with the same slices (not COVIDx CT's
        single slice cut from the volume, which the identity edge joins to it)."""
        frames = self.value(index, "frames") if "frames" in self.rows.columns else ""
        return (*self.size(index), frames)

    def find(self, spec: SourceSpec, item: Annotation) -> tuple[list[int], str]:
        """Rows the annotation lands on, or ``([], reason)``."""
        tried: list[str] = []
        for source, relative in item.targets:
            source = source or spec.name
            index = self.row_of(source, f"datasets/{source}/{relative}")
            if index is None:
                tried.append(f"{source}:{relative}")
                continue
            if item.width is not None and item.height is not None:
                stated = (str(item.width), str(item.height))
                if self.size(index) != stated:
                    width, height = self.size(index)
                    return [], (
                        f"drawn on a {item.width}x{item.height} image but {source}:{relative} is {width}x{height}"
                    )
            members = self.group(self.value(index, "dup_group"))
            if index not in members:  # no group, or an augmented copy (rotated, maybe mirrored): itself only
                members = [index]
            if item.kind in PIXEL_KINDS:  # same size and frame count: a volume's slice-k mask never lands on a slice
                members = [m for m in members if self.shape(m) == self.shape(index)]
            return sorted(members), ""
        return [], f"its image is not in the manifest (looked for {', '.join(tried)})"


def _annotation_id(spec: SourceSpec, item: Annotation) -> str:
    key = "|".join(
        (
            spec.name,
            item.path,
            repr(item.targets[:1]),
            "" if item.frame is None else str(item.frame),
            item.name,
            item.rater,
            repr(item.box),
        )
    )
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def _read_source(spec: SourceSpec, directory: Path, read: ReadFn, problems: list[Problem]) -> tuple[list, list, bool]:
    """(annotations, problems the reader reported, finished) of one reader run; a crash is a problem."""
    ctx = SourceContext(spec, directory, list_files(directory))
    items: list[Annotation] = []
    finished = True
    try:
        for item in read(ctx):
            if not isinstance(item, Annotation):
                raise TypeError(f"yielded {type(item).__name__}; readers yield Annotation and report problems")
            items.append(item)
    except Exception as err:  # noqa: BLE001 - a crashing reader must not take the build down
        problems.append(Problem(spec.name, f"annotation reader failed: {type(err).__name__}: {err}", level="error"))
        finished = False
    return items, list(ctx.problems), finished


def join_annotations(
    root: Path,
    registry: dict[str, SourceSpec],
    manifest: pd.DataFrame,
    commits: dict[str, str],
    *,
    progress: bool = True,
    keys: dict[str, str] | None = None,
    cache_dir: Path | None = None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Read every checked-out source's annotations and join them to ``manifest``.

    Sources that were not re-read in this build (not checked out, kept by sync) keep
    their previous ``annotations.csv`` rows whose image is still in the manifest. With
    ``keys`` (source -> its cache key) and ``cache_dir``, a source whose key is unchanged
    is not read again (:mod:`covid19_images.manifest.annotation_cache`); the join is the same.
    """
    root = Path(root)
    joiner = _Joiner(manifest)
    problems: list[Problem] = []
    rows: list[dict[str, str]] = []
    done: set[str] = set()
    specs = [s for s in registry.values() if s.name in commits]
    for spec in progress_bar(specs, asked=progress, desc="joining annotations", unit="source"):
        read = reader_for(spec)
        if read is None:
            continue
        directory = root / spec.path
        key = (keys or {}).get(spec.name, "")
        stored = annotation_cache.load(cache_dir, spec.name, key)
        if stored is not None:
            items, reported, hashes = stored.items, [Problem(**vars(p)) for p in stored.problems], dict(stored.hashes)
        else:
            items, reported, finished = _read_source(spec, directory, read, problems)
            hashes = {}
        unjoined: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for item in items:
            members, reason = joiner.find(spec, item)
            if not members:
                unjoined[(item.path, item.row, reason)].append(f"{item.name}/{item.rater}" if item.rater else item.name)
                continue
            if item.path not in hashes:
                hashes[item.path] = _sha256(directory / item.path)
            box = item.box or ("", "", "", "")
            license = normalise_license(item.license, "") if item.license else None
            annotation_id = _annotation_id(spec, item)
            for index in members:
                rows.append(
                    {
                        "annotation_id": annotation_id,
                        "image_id": joiner.value(index, "image_id"),
                        "kind": item.kind,
                        "source": spec.name,
                        "source_commit": commits.get(spec.name, ""),
                        "path": f"{spec.path}/{item.path}",
                        "sha256": hashes[item.path],
                        "frame": "" if item.frame is None else str(item.frame),
                        "name": item.name,
                        "value": item.value,
                        "rater": item.rater,
                        "x0": box[0] if box[0] == "" else _number(box[0]),
                        "y0": box[1] if box[1] == "" else _number(box[1]),
                        "x1": box[2] if box[2] == "" else _number(box[2]),
                        "y1": box[3] if box[3] == "" else _number(box[3]),
                        "license": license if license is not None else joiner.value(index, "license"),
                    }
                )
        if stored is None and finished and key:
            saved = [Problem(**vars(p)) for p in reported]
            annotation_cache.save(cache_dir, spec.name, annotation_cache.ReaderOutput(key, items, saved, hashes))
        problems.extend(reported)
        for (path, row, reason), names in unjoined.items():
            shown = ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")
            message = f"{len(names)} annotation(s) ({shown}) not joined: {reason}"
            problems.append(Problem(spec.name, message, path=path, row=row))
        done.add(spec.name)
    frame = pd.DataFrame(rows, columns=list(ANNOTATION_COLUMNS)) if rows else empty_annotations()
    try:
        previous = read_annotations(root)
    except DamagedManifest as err:  # the build rewrites it from the sources; kept rows cannot be trusted
        problems.append(Problem("", f"{PREVIOUS_NOT_KEPT}: {err}", level="warning"))
        previous = None
    if previous is not None and not previous.empty:
        # object arrays: pandas' Arrow-string isin makes a pyarrow scalar of each of 50,000 wanted ids
        ids = pd.Series(previous["image_id"].to_numpy(dtype=object), index=previous.index, dtype=object)
        held = ids.isin(manifest["image_id"].to_numpy(dtype=object))
        kept = previous[~previous["source"].isin(sorted(done)) & held]
        if not kept.empty:
            frame = pd.concat([frame, kept], ignore_index=True)
    frame = frame.drop_duplicates(["annotation_id", "image_id"]).astype(object)
    return frame.reset_index(drop=True), problems
