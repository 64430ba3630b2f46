"""MosMedData's annotations: the CT grade of every study, and the lesion masks of 50.

* ``severity`` ``mosmed_grade`` 0..4 from the study's folder (``CT-0``..``CT-4``): the README's
  grades by involvement of the lung parenchyma (0, <25%, 25-50%, 50-75%, >75%), one per study;
* ``mask`` rows per slice of ``masks/study_NNNN_mask.nii.gz`` (binary: 1 = ground-glass
  opacification or consolidation, README "Annotation"), ``lesion`` or ``no_lesion``.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.annotation import Annotation
from covid19_images.core.schema import Entry
from covid19_images.sources.catalog.mosmeddata import GRADES, parse
from covid19_images.sources.mask_volumes import mask_rows
from covid19_images.sources.parsing import SourceContext

LICENSE = "CC-BY-NC-ND-3.0"
CLASSES = {1: "lesion"}


def read(ctx: SourceContext) -> Iterator[Annotation]:
    quiet = SourceContext(ctx.spec, ctx.directory, ctx.files)  # the parser's problems are reported by the build
    entries: list[Entry] = list(parse(quiet))
    for entry in entries:
        grade = entry.extra["grade"]
        yield Annotation(
            "severity", entry.path, "mosmed_grade", [("", entry.path)], str(GRADES[grade]), "annotator",
            license=LICENSE, row=entry.row,
        )  # fmt: skip
        if entry.extra.get("mask"):
            yield from mask_rows(
                ctx,
                entry.extra["mask"],
                entry.path,
                CLASSES,
                empty_name="no_lesion",
                rater="annotator",
                license=LICENSE,
            )
