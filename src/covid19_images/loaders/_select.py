"""Manifest rows -> the ordered list of 2-D items a loader serves.

Every framework adapter serves exactly the same items in the same order with the same
label indices, because all of them start here. Filtering order matters and is fixed:

1. modality, labels, sources, views, licenses, augmented copies, non-axial CT series;
2. duplicates (one image per ``dup_group``) *before* the split filter, so the copy kept
   is the same whatever split is asked for, and no picture is served in two splits even
   under a split scheme that puts two copies on different sides;
3. class list from what is left across *all* splits, so ``train``, ``val`` and ``test``
   datasets agree on the index of every label;
4. the split;
5. stable order (source, path, frame) and expansion of volumes, multi-frame DICOM and
   videos into one item per served slice/frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covid19_images.core.schema import parse_extra
from covid19_images.imaging.formats import VIDEO_FORMATS
from covid19_images.loaders._options import KNOWN_LABELS, Options


class NoItemsError(ValueError):
    """The filters left nothing to serve; the message shows where the rows went."""


class DataNotAvailableError(FileNotFoundError):
    """A source is not checked out, or files the manifest lists are missing on disk."""


@dataclass(frozen=True)
class Selection:
    """The served items: ``items`` has the manifest columns plus ``frame`` (int),
    ``label_index`` (int) and ``file`` (absolute path), one row per served 2-D item."""

    items: pd.DataFrame
    classes: tuple[str, ...]
    root: Path
    #: the manifest file as it was when the items were read (``loaders._manifest.ManifestStamp``), or None
    stamp: Any = None

    def __len__(self) -> int:
        return len(self.items)


def _is_true(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


def _frames(row_format: str, count: int, video_frames: str | int) -> list[int]:
    """Which frames of one file become items.

    Volumes (NIfTI) and multi-frame DICOM serve every slice: in CT each slice is its own
    picture of different anatomy. Videos and animated GIFs sample frames: neighbouring
    frames are near-copies, so serving all of them mostly re-weights clips against stills.
    """
    count = max(int(count), 1)
    if count == 1:
        return [0]
    if row_format in VIDEO_FORMATS or row_format == "gif":
        if video_frames == "all":
            return list(range(count))
        if video_frames == "middle":
            return [count // 2]
        stride = int(video_frames)
        return list(range(0, count, stride))
    return list(range(count))


def _refuse_over_budget(paths: pd.Series, counts: np.ndarray) -> None:
    """A frame count over the budget (a manifest from before the budget, or edited) is refused, never expanded."""
    from covid19_images.imaging.budget import FRAMES_ENV, OverBudget, max_frames

    limit = max_frames()
    over = [f"{p} ({int(c):,} frames)" for p, c in zip(paths, counts, strict=True) if c > limit]
    if over:
        shown = ", ".join(over[:3]) + (" ..." if len(over) > 3 else "")
        raise OverBudget(
            f"{len(over)} manifest row(s) claim more than {limit:,} frames: {shown}; refused (rebuild the manifest "
            f"with `covid19-images sync --offline`, which reports such files, or raise ${FRAMES_ENV})"
        )


def largest_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by frame count (most first), then image id: the copy of a duplicate group kept is the one that
    holds the others. A CT volume joined to a slice cut from it (COVIDx CT's PNG of a MosMed study, an
    ``identity`` edge) keeps every slice it has, instead of the single PNG standing for the whole study."""
    frames = pd.to_numeric(frame["frames"], errors="coerce").fillna(1)
    return frame.assign(_frames=-frames).sort_values(["_frames", "image_id"], kind="mergesort").drop(columns="_frames")


def _describe(steps: list[tuple[str, int]]) -> str:
    return "; ".join(f"{name}: {count}" for name, count in steps)


def select(manifest: pd.DataFrame, options: Options) -> Selection:
    """Apply the filters, dedup, class list, split and frame expansion described above."""
    from covid19_images.manifest.split_schemes import resolve_labels, resolve_split

    frame = manifest.copy()
    # schemes such as leave-one-source-out need to see every row, so resolve before filtering
    # both are indexed like the manifest (one value per row)
    frame["split"] = resolve_split(manifest, options.split_scheme, root=options.root).fillna("").astype(str)
    scheme_labels = resolve_labels(manifest, options.split_scheme, root=options.root)
    if scheme_labels is not None:  # a scheme that labels an image we hold serves it with its label
        frame["label"] = scheme_labels.where(scheme_labels != "", frame["label"])
    steps: list[tuple[str, int]] = [("manifest rows", len(frame))]
    frame = frame[frame["modality"] == options.modality]
    steps.append((f"modality {options.modality}", len(frame)))

    if options.sources is not None:
        known = set(manifest["source"])
        unknown = [s for s in options.sources if s not in known]
        if unknown:
            raise NoItemsError(
                f"sources {unknown} have no rows in the manifest (sources with rows: {', '.join(sorted(known))}); "
                "check the name, or fetch it with `covid19-images sync <name>`"
            )
        frame = frame[frame["source"].isin(options.sources)]
        steps.append((f"sources {list(options.sources)}", len(frame)))

    labels = options.labels if options.labels is not None else (options.classes or KNOWN_LABELS)
    frame = frame[frame["label"].isin(labels)]
    steps.append((f"labels {list(labels)}", len(frame)))

    if options.views is not None:
        frame = frame[frame["view"].isin(options.views)]
        steps.append((f"views {list(options.views)}", len(frame)))
    if options.licenses is not None:
        frame = frame[frame["license"].isin(options.licenses)]
        steps.append((f"licenses {list(options.licenses)}", len(frame)))

    extras = [parse_extra(text) for text in frame["extra"]]
    if not options.include_augmented:
        keep = np.array([not _is_true(e.get("augmented")) for e in extras], dtype=bool)
        frame, extras = frame[keep], [e for e, k in zip(extras, keep, strict=True) if k]
        steps.append(("without augmented copies", len(frame)))
    if not options.include_non_axial:
        keep = np.array([str(e.get("series_role") or "axial") == "axial" for e in extras], dtype=bool)
        frame = frame[keep]
        steps.append(("without localizer/reformat series", len(frame)))

    if options.deduplicate and len(frame):
        # the copy kept: one the split scheme serves (COVIDx lists one copy of a picture, not its re-encodings
        # in other sources), then the one holding the others (largest_first)
        ordered = largest_first(frame)
        ordered = ordered.assign(_unsplit=ordered["split"].eq("")).sort_values("_unsplit", kind="mergesort")
        grouped = ordered["dup_group"].astype(str)
        repeat = grouped.ne("") & grouped.duplicated(keep="first")
        frame = frame.loc[~frame.index.isin(ordered.index[repeat])]
        steps.append(("one image per duplicate group", len(frame)))

    classes = options.classes or tuple(sorted(set(frame["label"])))

    if options.split is not None:
        frame = frame[frame["split"] == options.split]
        steps.append((f"split {options.split} ({options.split_scheme})", len(frame)))

    if frame.empty:
        raise NoItemsError(f"no {options.modality} images match the filters ({_describe(steps)})")

    frame = frame.sort_values(["source", "path"], kind="mergesort")
    counts = pd.to_numeric(frame["frames"], errors="coerce").fillna(1).astype(np.int64).to_numpy()
    _refuse_over_budget(frame["path"], counts)
    per_row = [_frames(fmt, count, options.video_frames) for fmt, count in zip(frame["format"], counts, strict=True)]
    repeats = np.array([len(f) for f in per_row], dtype=np.int64)
    items = frame.loc[frame.index.repeat(repeats)].reset_index(drop=True)
    items["frame"] = np.concatenate([np.asarray(f, dtype=np.int64) for f in per_row])
    index = {label: i for i, label in enumerate(classes)}
    items["label_index"] = items["label"].map(index).astype(np.int64)
    items["file"] = [os.fspath(options.root / p) for p in items["path"]]
    refuse_paths_outside(options.root, frame["path"])
    return Selection(items=items, classes=tuple(classes), root=options.root)


class UnsafeManifestPath(ValueError):
    """A manifest row names a file outside ``<root>/datasets/<source>``."""


def refuse_paths_outside(root: Path, paths: pd.Series) -> None:
    """Prove every served path stays inside the root's datasets folder, as sync proved when it wrote them.

    The manifest is a file anyone with write access (or a bad merge) can change: a row
    ``../secret.jpeg`` or ``/etc/passwd`` must not be opened and served as a training image.
    Checked lexically for every row, and through symlinks once per folder.
    """
    from covid19_images.core.paths import DATASETS_DIR, UnsafePath, lexical_problem, safe_relative

    base = Path(root) / DATASETS_DIR
    bad: list[str] = []
    folders: set[str] = set()
    for path in paths:
        text = str(path)
        if lexical_problem(text) or not text.startswith(f"{DATASETS_DIR}/"):
            bad.append(text)
            continue
        folders.add(text.rsplit("/", 1)[0])
    for folder in sorted(folders):
        try:
            safe_relative(base, folder[len(DATASETS_DIR) + 1 :])
        except UnsafePath:
            bad.append(folder + "/")
    if bad:
        shown = ", ".join(repr(p) for p in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise UnsafeManifestPath(
            f"{len(bad)} manifest row(s) name files outside {base}: {shown}; refused (a manifest edited by hand "
            "or a bad merge?): rebuild it with `covid19-images sync --offline`"
        )


def _checked_out(directory: Path) -> bool:
    try:
        return any(child.name != ".git" for child in directory.iterdir())
    except OSError:
        return False


def check_available(selection: Selection) -> None:
    """Stat every served file once, up front, so a missing checkout is one clear error now
    rather than a worker-process traceback twenty minutes into the first epoch."""
    root = selection.root
    unique = selection.items.drop_duplicates("path")
    problems: list[str] = []
    for source, group in unique.groupby("source"):  # by source name, as the items are
        folder = "/".join(Path(group["path"].iloc[0]).parts[:2])  # datasets/<folder>/...: refuse_paths_outside
        fetch = f"`git submodule update --init {folder}` (or `covid19-images sync {source}`)"
        if not _checked_out(root / folder):
            problems.append(
                f"source {source!r} is not checked out ({root / folder} is missing or empty): "
                f"fetch it with {fetch}, or leave it out with sources=[...]"
            )
            continue
        missing = [p for p in group["path"] if not os.path.isfile(root / p)]
        if missing:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            problems.append(
                f"source {source!r}: {len(missing)} of {len(group)} files listed in the manifest are missing "
                f"({shown}): restore the pinned checkout with {fetch}, or rebuild the manifest from what is "
                "checked out with `covid19-images sync --offline`"
            )
    if problems:
        raise DataNotAvailableError("\n".join(problems))
