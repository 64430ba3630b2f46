"""Brixia scores as annotations: 14 per scored image (zones A-F and global, two raters).

Each score attaches to the image it was made on: BrixIA's own copy when the checkout holds
it (and through its duplicate group to the byte-identical ieee8023 file), else the
ieee8023 ``images/`` file of the same name.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.annotation import Annotation, score_in_range
from covid19_images.sources.catalog.brixia_score import IMAGES, SCORES
from covid19_images.sources.parsing import SourceContext, column

#: README "License and Attribution": the Brixia-score annotations are CC BY-NC-SA 4.0.
LICENSE = "CC-BY-NC-SA-4.0"
ZONES = ("A", "B", "C", "D", "E", "F")
RATERS = {"S": "senior", "J": "junior"}
IEEE8023 = "ieee8023-covid-chestxray"
#: zone scores are 0-3, the global score is their sum, 0-18
RANGES = {"Global": 18, **{zone: 3 for zone in ZONES}}


def read(ctx: SourceContext) -> Iterator[Annotation]:
    for row in ctx.metadata_rows(SCORES) or ():
        where = row["_row"]
        filename = column(row, "filename")
        if not filename:
            continue  # the parser reported it
        targets = [("", f"{IMAGES}/{filename}"), (IEEE8023, f"images/{filename}")]
        for prefix, rater in RATERS.items():
            for zone, top in RANGES.items():
                raw = column(row, f"{prefix}-{zone}")
                value = score_in_range(raw, top, integer=True)
                if value is None:
                    ctx.report(f"{prefix}-{zone} = {raw!r} is not a score 0-{top}; skipped", SCORES, where)
                    continue
                yield Annotation(
                    kind="severity",
                    path=SCORES,
                    name=f"brixia_{zone if zone != 'Global' else 'global'}",
                    value=str(int(value)),
                    rater=rater,
                    targets=targets,
                    license=LICENSE,
                    row=where,
                )
