"""ieee8023/covid-chestxray-dataset: ``metadata.csv``, one row per image.

Three schemas exist over time and all are read here: March 2020 (``Patientid``,
``" url"``, no ``folder`` column: files under ``images/``), June 2020 (``folder`` +
``filename``, trailing empty column), and the newest (``RT_PCR_positive``, hierarchical
``finding`` such as ``Pneumonia/Viral/COVID-19``). Rows pointing at files that are not in
the checkout (``volumes/*.nii.gz`` are distributed by torrent) are reported, not fatal.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.files import is_image_name
from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_sex, harmonise_view, parse_age
from covid19_images.sources.parsing import SourceContext, column

METADATA = "metadata.csv"


def parse(ctx: SourceContext) -> Iterator[Entry]:
    rows = ctx.metadata_rows(METADATA)
    if rows is None:
        return
    referenced: set[str] = set()
    for row in rows:
        where = row["_row"]
        filename = column(row, "filename")
        if not filename:
            ctx.report("row has no filename", path=METADATA, row=where)
            continue
        folder = column(row, "folder", default="images") or "images"
        relative = f"{folder}/{filename}"
        referenced.add(relative)
        yield from ctx.memoised(row, _entry, relative)
    yield from _unreferenced_images(ctx, referenced)


def _entry(ctx: SourceContext, row: dict[str, str], relative: str) -> Iterator[Entry]:
    """The image of one row, if its file is there (a function of the row and that answer: memoised)."""
    where = row["_row"]
    if not ctx.require(relative, where, METADATA):
        return
    finding = column(row, "finding")
    label, detail = ctx.label(finding, METADATA, where)
    modality_raw = column(row, "modality").lower()
    modality = "ct" if modality_raw == "ct" else "xray"
    extra = {
        key: value
        for key, value in (
            ("rt_pcr_positive", column(row, "RT_PCR_positive")),
            ("offset_days", column(row, "offset")),
            ("survival", column(row, "survival")),
            ("doi", column(row, "doi")),
            ("url", column(row, "url")),
            ("date", column(row, "date")),
            ("location", column(row, "location")),
        )
        if value and value != "?"
    }
    yield Entry(
        path=relative,
        modality=modality,
        finding=finding,
        label=label,
        label_detail=detail,
        view=harmonise_view(column(row, "view")),
        patient_id=column(row, "patientid"),
        age=parse_age(column(row, "age")),
        sex=harmonise_sex(column(row, "sex")),
        license=column(row, "license"),
        row=where,
        extra=extra,
    )


def _unreferenced_images(ctx: SourceContext, referenced: set[str]) -> Iterator[Entry]:
    """Image files under ``images/`` that no line of ``metadata.csv`` names: indexed with label ``unknown``.

    Upstream adds images before their metadata rows (patients 426a/426b at 2020-06-22), and
    split schemes such as COVIDx list them with a label; indexing them lets such a scheme
    serve them. ``unknown`` keeps them out of the default loaders.
    """
    if not referenced:
        return  # metadata without one usable row (binary, wrong columns): indexing every image as unknown hides that
    try:
        text = (ctx.directory / METADATA).read_bytes()
    except OSError:
        return
    for relative in ctx.files_under("images"):
        if relative in referenced or not is_image_name(relative):
            continue
        if relative.rsplit("/", 1)[-1].encode() in text:
            continue  # a row names it but could not be used (ragged, no filename column ...): already reported
        ctx.report("image file has no metadata.csv row; indexed with label unknown", path=relative)
        yield Entry(
            path=relative, modality="xray", finding="", label="unknown", row=relative, extra={"no_metadata_row": True}
        )
