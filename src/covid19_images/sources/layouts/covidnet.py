"""What the COVID-Net chest X-ray initiatives (Figure1, Actualmed; agchung) share.

Both publish ``metadata.csv`` with the same column family (``patientid``, ``finding``,
``view``, ``modality`` and a few clinical columns) next to ``images/``; they differ in how a
row names its image (and Figure1 how it writes ages), so each catalog source's ``parse``
says just that and hands the rest to :func:`parse_metadata`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_sex, harmonise_view
from covid19_images.sources.parsing import SourceContext, column

METADATA = "metadata.csv"
IMAGES = "images"
#: in preference order, not a set: Figure1's metadata names no file, so a patient id with
#: both a .jpg and a .png is served from the .jpg (tests/sources/catalog/test_figure1_xray.py)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_UNKNOWN_VIEWS = {"", "?", "unknown"}
Row = dict[str, str]
#: metadata column -> extra key, for the clinical columns the COVID-Net initiatives share.
CLINICAL_EXTRA = (
    ("offset", "offset_days"),
    ("survival", "survival"),
    ("temperature", "temperature"),
    ("pO2 saturation", "po2_saturation"),
    ("artifacts/distortion", "artifacts"),
)


def view_of(ctx: SourceContext, raw: str, path: str, where: str) -> str:
    """Harmonised view; a non-blank spelling the vocabulary lacks is reported (``path``, ``where``)."""
    view = harmonise_view(raw)
    if view == "unknown" and raw.strip().lower() not in _UNKNOWN_VIEWS:
        ctx.report(f"unmapped view {raw!r} -> unknown", path=path, row=where)
    return view


def clinical_extra(row: dict[str, str]) -> dict[str, str]:
    """The shared clinical columns of one row, as ``extra`` keys (blank and ``N/A`` left out)."""
    return {key: value for name, key in CLINICAL_EXTRA if (value := column(row, name)) and value.upper() != "N/A"}


def modality_of(raw: str) -> str:
    """``ct`` when the row says so, else ``xray`` (both initiatives are chest X-ray collections)."""
    return "ct" if raw.strip().lower() == "ct" else "xray"


def parse_metadata(
    ctx: SourceContext,
    images: Iterable[str],
    image_of: Callable[[Row], str | None],
    facts: Callable[[Row], tuple[str, float | None, dict[str, Any]]],
) -> Iterator[Entry]:
    """One Entry per metadata row whose image is found; then every image no row named is reported.

    Args:
        ctx: the source being parsed.
        images: every image file of the checkout a row could name.
        image_of: the image a row names, or None after reporting why there is none usable.
        facts: ``(patient_id, age, extra)`` of a row, read the source's own way; ``extra``
            is added to the shared clinical columns.
    """
    rows = ctx.metadata_rows(METADATA)
    if rows is None:
        return
    used: set[str] = set()
    for row in rows:
        relative = image_of(row)
        if relative is None:
            continue
        used.add(relative)
        patient_id, age, extra = facts(row)
        yield _entry(ctx, row, relative, patient_id=patient_id, age=age, extra=extra)
    for relative in sorted(set(images) - used):
        ctx.report(f"image has no row in {METADATA}; not indexed", path=relative)


def _entry(
    ctx: SourceContext, row: Row, relative: str, *, patient_id: str, age: float | None, extra: dict[str, Any]
) -> Entry:
    where = row["_row"]
    finding = column(row, "finding")
    label, detail = ctx.label(finding, METADATA, where)
    return Entry(
        path=relative,
        modality=modality_of(column(row, "modality")),
        finding=finding,
        label=label,
        label_detail=detail,
        view=view_of(ctx, column(row, "view"), METADATA, where),
        patient_id=patient_id,
        age=age,
        sex=harmonise_sex(column(row, "sex")),
        row=where,
        extra={**clinical_extra(row), **extra},
    )
