"""jannisborn/covid19_ultrasound (POCUS): lung ultrasound images and video clips.

Layout: ``data/pocus_images/{convex,linear}/`` and ``data/pocus_videos/{convex,linear}/``
(plus ``data/pocus_videos/linear/label_uncertain/``), one file per image or clip, and
``data/dataset_metadata.csv`` (45 columns, one header cell empty) describing every clip
the authors know of, including the many that are not redistributed.

Why it looks the way it does:

* The files are the unit: one entry per image or video present. The metadata is a
  catalogue, not an index: its ``Filename`` has no extension, ``InThisRepo`` is
  Yes/No/Np, ``Current location`` is free text. A file finds its row by stem, exactly
  first, then case-insensitively ignoring ``-``, ``_`` and spaces.
* Label: the matched row's ``Label`` (COVID-19, regular/Regular, Bacterial pneumonia,
  Viral pneumonia), else the file-name prefix the authors use (Cov_/Pneu_/Vir_/Reg_, also
  with ``-``). A disagreement between the two is reported. Clips in ``label_uncertain/``
  are ``unknown`` whatever the row says: the authors park there what they could not
  confirm (data/README: Piacenza patients without PCR tests; the one clip in the
  repository, ``Vir_or_Pneu_prospective_file4``, is "viral or bacterial" while its row
  says Viral pneumonia). The row's label stays in ``finding``.
* ``view`` is the probe (convex/linear) from the folder, which decides what the picture
  looks like; the row's ``Probe`` column is not needed.
* ``License`` per row (``None`` = none stated, so the source default applies).
* ``Patient ID / Name`` holds running numbers over the whole sheet (never names in this
  version); a few numbers recur across different web sources, which only makes the
  patient groups more conservative. ``Gender`` uses ``m``/``w`` (German *weiblich*).
* Rows without a file are normal (InThisRepo=No: not redistributable) and only counted;
  rows marked InThisRepo=Yes without a file are reported one by one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_finding, harmonise_sex, harmonise_view, parse_age
from covid19_images.sources.parsing import SourceContext, column, iter_rows

METADATA = "data/dataset_metadata.csv"
MEDIA_DIRS = ("data/pocus_images", "data/pocus_videos")
UNCERTAIN_DIR = "label_uncertain"
PROBES = ("convex", "linear")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mpeg", ".mpg", ".m4v", ".webm", ".gif")
#: file-name prefix -> raw finding, as the authors name their files
PREFIXES = {"cov": "COVID-19", "pneu": "Bacterial pneumonia", "vir": "Viral pneumonia", "reg": "regular"}
_PREFIX = re.compile(r"^(?P<prefix>cov|pneu|vir|reg)[-_ ]", re.IGNORECASE)
_GERMAN_SEX = {"w": "F", "weiblich": "F", "männlich": "M"}

Row = dict[str, str]


def normalise_stem(stem: str) -> str:
    """Case-insensitive, ignoring ``-``, ``_`` and whitespace: how sheet names and file names drift."""
    return re.sub(r"[\s_\-]+", "", stem.strip().lower())


def media_files(ctx: SourceContext) -> list[str]:
    found: list[str] = []
    for folder in MEDIA_DIRS:
        for relative in ctx.files_under(folder):
            name = PurePosixPath(relative).name
            if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS):
                continue
            found.append(relative)
    return sorted(found)


def probe_of(relative: str) -> str:
    parts = [p.lower() for p in PurePosixPath(relative).parts[:-1]]
    return next((p for p in parts if p in PROBES), "")


def label_from_prefix(stem: str) -> str:
    """Raw finding from the file-name prefix (``Cov_...`` -> ``COVID-19``), ``""`` without one."""
    match = _PREFIX.match(stem)
    return PREFIXES[match.group("prefix").lower()] if match else ""


class MetadataIndex:
    """Metadata rows findable by exact and by normalised stem."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.exact: dict[str, list[int]] = {}
        self.loose: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            name = column(row, "Filename")
            if not name:
                continue
            if name.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS):
                name = PurePosixPath(name).stem
            self.exact.setdefault(name, []).append(index)
            self.loose.setdefault(normalise_stem(name), []).append(index)

    def match(self, relative: str) -> list[int]:
        stem = PurePosixPath(relative).stem
        candidates = self.exact.get(stem) or self.loose.get(normalise_stem(stem), [])
        probe = probe_of(relative)

        def preference(index: int) -> tuple[bool, bool, int]:
            row = self.rows[index]
            return (column(row, "Probe").lower() != probe, column(row, "InThisRepo").lower() != "yes", index)

        return sorted(candidates, key=preference)


def read_rows(ctx: SourceContext) -> list[Row]:
    """The metadata rows; none (reported) without the file: labels then come from file names."""
    if not ctx.exists(METADATA):
        ctx.report(f"no {METADATA}; labels come from file names only", path=METADATA)
        return []
    frame = ctx.read_csv(METADATA)
    return list(iter_rows(frame)) if frame is not None else []


def _sex(raw: str) -> str:
    return harmonise_sex(raw) or _GERMAN_SEX.get(raw.strip().lower(), "")


def _extra(relative: str, row: Row | None, label_source: str) -> dict[str, str]:
    kind = "video" if "/pocus_videos/" in f"/{relative}" else "image"
    extra = {"type": kind, "label_source": label_source}
    if row is not None:
        extra.update(
            {
                key: value
                for key, value in (
                    ("lung_severity_score", column(row, "Lung Severity Score")),
                    ("source_id", column(row, "Source ID")),
                    ("url", column(row, "URL (Video Name)", "URL")),
                )
                if value
            }
        )
    return extra


def entry_for(ctx: SourceContext, relative: str, row: Row | None) -> Entry:
    """The entry of one file and its matched row (if any); label disagreements are reported."""
    stem = PurePosixPath(relative).stem
    prefix_finding = label_from_prefix(stem)
    row_finding = column(row, "Label") if row else ""
    finding = row_finding or prefix_finding
    label, detail, known = harmonise_finding(finding)
    where = row["_row"] if row else ""
    if finding and not known:
        ctx.report(f"unmapped label {finding!r} -> unknown", path=relative, row=where)
    if row_finding and prefix_finding and harmonise_finding(prefix_finding)[:2] != (label, detail):
        message = f"metadata says {row_finding!r}, the file-name prefix says {prefix_finding!r}; metadata kept"
        ctx.report(message, path=relative, row=where)
    if not finding:
        ctx.report("no metadata row and no label prefix in the name -> unknown", path=relative)
    extra = _extra(relative, row, "metadata" if row_finding else ("filename" if prefix_finding else ""))
    if UNCERTAIN_DIR in PurePosixPath(relative).parts:
        label, detail = "unknown", ""
        extra["label_uncertain"] = "true"
    return Entry(
        path=relative,
        modality="ultrasound",
        finding=finding,
        label=label,
        label_detail=detail,
        view=harmonise_view(probe_of(relative)),
        patient_id=column(row, "Patient ID / Name", "Patient ID") if row else "",
        age=parse_age(column(row, "Age")) if row else None,
        sex=_sex(column(row, "Gender")) if row else "",
        license=column(row, "License") if row else "",
        row=where,
        extra=extra,
    )


def report_unmatched(ctx: SourceContext, rows: list[Row], used: set[int]) -> None:
    """One summary count of rows without a file; each InThisRepo=Yes row without a file on its own."""
    absent = [row for index, row in enumerate(rows) if index not in used]
    if not absent:
        return
    counts = Counter(column(row, "InThisRepo") or "(blank)" for row in absent)
    summary = ", ".join(f"{value} {count}" for value, count in sorted(counts.items()))
    ctx.report(
        f"{len(absent)} of {len(rows)} metadata rows have no file in the checkout (InThisRepo: {summary})",
        path=METADATA,
        level="info",
    )
    for row in absent:
        if column(row, "InThisRepo").lower() == "yes":
            location = column(row, "Current location")
            message = f"InThisRepo=Yes but no file named {column(row, 'Filename')!r}.* exists"
            ctx.report(
                message + (f" (Current location: {location!r})" if location else ""), path=METADATA, row=row["_row"]
            )


def parse(ctx: SourceContext) -> Iterator[Entry]:
    rows = read_rows(ctx)
    index = MetadataIndex(rows)
    files = media_files(ctx)
    if not files:
        ctx.report(f"no images or videos under {' or '.join(MEDIA_DIRS)}", level="error")
    used: set[int] = set()
    claimed: dict[int, str] = {}
    for relative in files:
        matches = index.match(relative)
        row_index = next((i for i in matches if i not in claimed), matches[0] if matches else None)
        row = rows[row_index] if row_index is not None else None
        if row_index is not None:
            if row_index in claimed:
                ctx.report(f"shares its metadata row with {claimed[row_index]}", path=relative, row=row["_row"])
            claimed.setdefault(row_index, relative)
            used.update(matches)
        yield entry_for(ctx, relative, row)
    report_unmatched(ctx, rows, used)
