"""The manifest schema: the one contract every parser, loader and report shares.

The column list, the closed vocabularies of ``modality``, ``label`` and ``split``, and the
two records a parser yields (:class:`Entry`, :class:`Problem`). The open-ended mappings live
elsewhere: raw findings and views in :mod:`covid19_images.core.vocab`, file formats in
:mod:`covid19_images.imaging.formats`. ``tests/test_docs.py`` checks that manifests/README.md
documents exactly these columns and vocabularies, so a new source cannot invent a column or
a spelling without a test noticing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Columns of ``manifests/manifest.csv`` in their written order. Documented in manifests/README.md.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "image_id",
    "source",
    "source_commit",
    "path",
    "git_blob",
    "sha256",
    "pixel_sha256",
    "phash",
    "format",
    "width",
    "height",
    "frames",
    "modality",
    "view",
    "label",
    "label_detail",
    "finding",
    "patient_id",
    "age",
    "sex",
    "license",
    "official_split",
    "dup_group",
    "split_group",
    "split",
    "extra",
)
#: What probing a file gives (lent from the previous manifest for an unchanged git blob).
FACT_COLUMNS: tuple[str, ...] = ("sha256", "pixel_sha256", "phash", "format", "width", "height", "frames")
#: Columns one source's build fills; ``dup_group``, ``split_group`` and ``split`` come later, over all sources.
ROW_COLUMNS: tuple[str, ...] = tuple(c for c in MANIFEST_COLUMNS if c not in ("dup_group", "split_group", "split"))

MODALITIES = ("xray", "ct", "ultrasound")
LABELS = ("covid-19", "pneumonia", "normal", "other", "unknown")
SPLITS = ("train", "val", "test")
#: Columns of ``manifests/problems.csv`` in their written order, and the levels a problem has.
#: Documented in manifests/README.md beside the manifest columns.
PROBLEM_COLUMNS: tuple[str, ...] = ("level", "source", "path", "row", "message")
PROBLEM_LEVELS = ("error", "warning", "info")


@dataclass
class Entry:
    """One image as a parser sees it, before the builder adds hashes, ids and splits.

    ``path`` is relative to the source folder; the builder refuses paths that leave it.
    ``label`` left ``None`` is derived by the builder from ``finding``
    (:func:`covid19_images.core.vocab.harmonise_finding`); a value outside :data:`LABELS`
    becomes ``unknown``. ``patient_id`` is the upstream's id as given (the builder prefixes
    ``<source>:``; identifiers read from DICOM headers must already be pseudonymised with
    :func:`covid19_images.core.pseudonyms.pseudonym`). ``row`` names the metadata row (file
    and 1-based line) so every problem can point at it. ``extra`` becomes the ``extra``
    column's JSON.
    """

    path: str
    modality: str
    finding: str = ""
    label: str | None = None
    label_detail: str = ""
    view: str = "unknown"
    patient_id: str = ""
    age: float | None = None
    sex: str = ""
    license: str = ""
    official_split: str = ""
    row: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Problem:
    """Something wrong with one input, reported and skipped instead of failing the build.

    One row of ``manifests/problems.csv`` (columns documented in manifests/README.md).
    ``path`` is always relative to the source's folder ``datasets/<source>/`` (``""`` when
    the problem concerns the source as a whole), whoever reports it: a parser through
    ``SourceContext.report`` or the builder. ``row`` names the metadata row when there is one.

    ``level`` is ``warning`` (the default), ``error`` (an input the source promised could not
    be used) or ``info`` (worth knowing, nothing wrong). ``path`` names the file, ``row`` the
    metadata row; ``str()`` gives the one-line form sync prints.
    """

    source: str
    message: str
    path: str = ""
    row: str = ""
    level: str = "warning"

    def __post_init__(self) -> None:
        if self.level not in PROBLEM_LEVELS:
            raise ValueError(f"problem level {self.level!r} is not one of {PROBLEM_LEVELS}")

    def __str__(self) -> str:
        row = self.row
        if self.path and row.startswith(self.path):
            row = row[len(self.path) :].strip()
        where = " ".join(part for part in (self.path, row) if part)
        return f"[{self.source}] {where + ': ' if where else ''}{self.message}"


def parse_extra(text: str) -> dict[str, Any]:
    """The manifest's ``extra`` JSON cell as a dict; ``{}`` for a blank or hand-damaged cell."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
