"""ieee8023/covid-chestxray-dataset: ``metadata.csv``, one row per image.

Three schemas exist over time and all are read here: March 2020 (``Patientid``,
``" url"``, no ``folder`` column: files under ``images/``), June 2020 (``folder`` +
``filename``, trailing empty column), and the newest (``RT_PCR_positive``, hierarchical
``finding`` such as ``Pneumonia/Viral/COVID-19``). Rows pointing at files that are not in
the checkout (``volumes/*.nii.gz`` are distributed by torrent) are reported, not fatal.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_sex, harmonise_view, parse_age
from covid19_images.sources.parsing import SourceContext, column

METADATA = "metadata.csv"


def parse(ctx: SourceContext) -> Iterator[Entry]:
    for row in ctx.metadata_rows(METADATA) or ():
        where = row["_row"]
        filename = column(row, "filename")
        if not filename:
            ctx.report("row has no filename", path=METADATA, row=where)
            continue
        folder = column(row, "folder", default="images") or "images"
        relative = f"{folder}/{filename}"
        if not ctx.require(relative, where, METADATA):
            continue
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
