"""``verify`` for ``manifests/annotations.csv``: is it whole, and do its files and images still exist?

Three findings, each failing:

* ``annotations_damaged``: the file does not match its integrity record (edited, merged,
  cut short since the last sync) or shows damage on its own (conflict markers, a row with
  the wrong number of fields, a cut last line, missing columns);
* ``annotation_files``: a file an annotation row names (``path``: the CSV, JSON, mask PNG
  or NIfTI holding it) is missing, or its bytes no longer hash to the row's ``sha256``;
* ``annotation_orphans``: an annotation's ``image_id`` is not in the manifest (one entry
  per annotation file, with the count and a few ids): a loader would never serve it.

Each annotation file is hashed once, however many rows it holds.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from covid19_images.core.progress import progress_bar
from covid19_images.core.workers import io_workers
from covid19_images.imaging.probe import sha256_file
from covid19_images.manifest.annotations import read_annotations
from covid19_images.manifest.integrity import DamagedManifest
from covid19_images.manifest.io import ANNOTATIONS_FILE


def _file_finding(root: Path, source: str, path: str, expected: str) -> dict[str, str] | None:
    full = root / path
    base = {"source": source, "path": path}
    if not full.is_file():
        return {**base, "why": "missing"}
    try:
        actual = sha256_file(full)
    except OSError as err:
        return {**base, "why": f"cannot read: {err}"}
    if expected and actual != expected:
        return {**base, "why": "changed", "expected": expected, "actual": actual}
    return None


def verify_annotations(
    root: Path, manifest: pd.DataFrame, result: Any, *, progress: bool = True, workers: int | None = None
) -> None:
    """Add the findings about ``annotations.csv`` to ``result`` (a ``VerifyResult``); nothing when there is none."""
    root = Path(root)
    try:
        frame = read_annotations(root)
    except DamagedManifest as err:
        result.annotations_damaged.append({"source": "", "path": ANNOTATIONS_FILE, "error": str(err)})
        return
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        result.annotations_damaged.append({"source": "", "path": ANNOTATIONS_FILE, "error": f"unreadable: {err}"})
        return
    if frame is None:
        return
    absent = frame.attrs.get("absent_columns", [])
    if absent:
        result.annotations_damaged.append(
            {"source": "", "path": ANNOTATIONS_FILE, "error": f"columns missing: {', '.join(absent)}"}
        )
        return
    result.annotations_checked = len(frame)
    files = frame.drop_duplicates(["path", "sha256"])[["source", "path", "sha256"]].to_dict("records")
    with ThreadPoolExecutor(max_workers=io_workers(workers)) as pool:
        found = pool.map(lambda r: _file_finding(root, r["source"], r["path"], r["sha256"]), files)
        for finding in progress_bar(found, asked=progress, total=len(files), desc="annotation files", unit="file"):
            if finding is not None:
                result.annotation_files.append(finding)
    held = set(manifest["image_id"])
    orphans = frame[~frame["image_id"].isin(held)]
    for (source, path), rows in orphans.groupby(["source", "path"], sort=True):
        ids = sorted(set(rows["image_id"]))
        shown = ", ".join(ids[:3]) + (" ..." if len(ids) > 3 else "")
        result.annotation_orphans.append(
            {"source": str(source), "path": str(path), "count": str(len(rows)), "image_ids": shown}
        )
