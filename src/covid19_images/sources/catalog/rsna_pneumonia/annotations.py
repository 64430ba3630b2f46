"""RSNA's lung-opacity boxes: one ``box`` annotation per ``Target`` 1 row of the labels file.

``x,y`` is the top-left corner and ``width,height`` the size, in pixels of the 1024x1024
DICOM, written as floats (``264.0``); a Target 1 row whose numbers are missing, negative or
not numbers is reported and skipped. Target 0 rows (empty coordinates) carry no box.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.annotation import Annotation
from covid19_images.sources.catalog.rsna_pneumonia import LABELS, TRAIN_IMAGES
from covid19_images.sources.parsing import SourceContext, column, iter_rows

LICENSE = "RSNA-challenge-terms"
FIELDS = ("x", "y", "width", "height")


def read(ctx: SourceContext) -> Iterator[Annotation]:
    if not ctx.exists(LABELS):
        return
    frame = ctx.read_csv(LABELS)
    for row in iter_rows(frame) if frame is not None else ():
        if column(row, "Target") != "1":
            continue
        try:
            x, y, width, height = (float(column(row, name)) for name in FIELDS)
        except ValueError:
            ctx.report(
                f"Target 1 row without a numeric box {[column(row, n) for n in FIELDS]}; skipped",
                path=LABELS,
                row=row["_row"],
            )
            continue
        if min(x, y) < 0 or width <= 0 or height <= 0:
            ctx.report(f"box {x:g},{y:g} {width:g}x{height:g} is not a box; skipped", path=LABELS, row=row["_row"])
            continue
        yield Annotation(
            kind="box",
            path=LABELS,
            name="lung_opacity",
            value="1",
            targets=[("", f"{TRAIN_IMAGES}/{column(row, 'patientId')}.dcm")],
            box=(x, y, x + width, y + height),
            license=LICENSE,
            row=row["_row"],
        )
