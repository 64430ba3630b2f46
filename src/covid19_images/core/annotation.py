"""The annotation schema: ``manifests/annotations.csv``, one row per annotation and image.

Labels say what an image shows; annotations say where and how much (lung masks, lesion
masks, boxes, severity scores, per-image findings). They live in their own table because
an image has any number of them, and because they often come from another source than the
image (BrixIA scores ieee8023 pictures, V7 Labs drew masks on images it does not ship).
Per-source readers yield :class:`Annotation`; ``manifest.annotations`` joins them to
manifest rows and fills the ids, hashes and source commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Columns of ``manifests/annotations.csv`` in written order. Documented in manifests/README.md.
ANNOTATION_COLUMNS: tuple[str, ...] = (
    "annotation_id",
    "image_id",
    "kind",
    "source",
    "source_commit",
    "path",
    "sha256",
    "frame",
    "name",
    "value",
    "rater",
    "x0",
    "y0",
    "x1",
    "y1",
    "license",
)

#: ``mask``: a label image (``path`` is the mask file, ``value`` the pixel value(s) of ``name``);
#: ``box``: ``x0 y0 x1 y1`` in pixels of the image, x right, y down; ``severity``: a number in
#: ``value``; ``finding``: a per-image finding, ``value`` "1" present / "0" absent.
KINDS = ("mask", "box", "severity", "finding")
#: who made it: radiologists (``senior``/``junior``), the mean of several (``mean_of_3``), a model, ...
RATERS = ("senior", "junior", "mean_of_3", "model", "annotator", "")


@dataclass
class Annotation:
    """One annotation as a source's reader sees it, before the join.

    ``path`` is the file that holds it (relative to the reader's source folder). ``targets``
    lists where the annotated image may be, ``(source, path relative to that source)``, in
    order of preference; ``""`` as source means the reader's own source. ``width`` and
    ``height``, when the annotation states the size of the image it was drawn on, are
    checked against the joined image, so a mask never lands on a different picture that
    happens to share a name.
    """

    kind: str
    path: str
    name: str
    targets: list[tuple[str, str]]
    value: str = ""
    rater: str = ""
    frame: int | None = None
    box: tuple[float, float, float, float] | None = None
    license: str = ""
    width: int | None = None
    height: int | None = None
    row: str = ""
    #: a mask is pixel-aligned with its image: it may only spread to copies of the same size
    extra: dict[str, str] = field(default_factory=dict)


_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)


def score_in_range(raw: str, top: float, *, integer: bool = False) -> float | None:
    """The score ``raw`` holds when it is a number in ``0..top`` (a whole one if ``integer``), else None.

    Severity sheets hold blanks, ``?`` and typos; a reader reports those and skips them. Only
    plain decimals count (``2``, ``3.33``): Python's ``float`` also takes ``1_0`` (ten),
    ``1e0``, ``inf``, ``nan`` and non-ASCII digits, none of which a rater wrote as a score.
    """
    if not isinstance(raw, str) or not _DECIMAL.fullmatch(raw):
        return None
    value = float(raw)
    if not 0.0 <= value <= top or (integer and not value.is_integer()):
        return None
    return value
