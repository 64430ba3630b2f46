"""POCUS finding columns as per-clip findings (``value`` 1 present, 0 absent).

``data/dataset_metadata.csv`` rates every clip for B-lines, A-lines, consolidations,
pleural effusion, pleural-line irregularities, air bronchogram and "healthy" with 1/0;
a blank cell is not rated and yields nothing. A clip finds its row the way the parser
matches it (stem, then loosely), so findings land on the same file as the label.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.annotation import Annotation
from covid19_images.sources.parsing import SourceContext, column

#: metadata column -> finding name (the vocabulary ``target="multilabel"`` serves for ultrasound)
FINDING_COLUMNS = {
    "B-lines": "b_lines",
    "A-lines": "a_lines",
    "Consolidations": "consolidation",
    "Effusion": "pleural_effusion",
    "Pleural line irregularities": "pleural_line_irregularities",
    "Air bronchogram": "air_bronchogram",
    "Healthy": "healthy",
}


def read(ctx: SourceContext) -> Iterator[Annotation]:
    from covid19_images.sources.catalog.pocus_ultrasound import METADATA, MetadataIndex, media_files, read_rows

    rows = read_rows(ctx)  # reports a missing sheet
    index = MetadataIndex(rows)
    claimed: set[int] = set()
    for relative in media_files(ctx):
        matches = index.match(relative)
        row_index = next((i for i in matches if i not in claimed), matches[0] if matches else None)
        if row_index is None:
            continue
        claimed.add(row_index)
        row = rows[row_index]
        for header, name in FINDING_COLUMNS.items():
            raw = column(row, header)
            if raw == "":
                continue
            if raw not in ("0", "1"):
                ctx.report(f"{header} = {raw[:60]!r} is not 0/1; skipped", path=METADATA, row=row["_row"])
                continue
            yield Annotation(
                kind="finding",
                path=METADATA,
                name=name,
                value=raw,
                rater="annotator",
                targets=[("", relative)],
                license="",
                row=row["_row"],
            )
