"""COVID-QU-Ex's masks: ``lung masks/<name>`` and ``infection masks/<name>`` beside ``images/<name>``.

A mask has its image's file name in the sibling ``images/`` folder of the same set, split and
class (0 background, 255 lung or infection). Every image has a lung mask; infection masks exist
in the Infection Segmentation set only (those of Non-COVID and Normal images, where present, are
empty: no infection, which is an annotation too). A mask without its image is reported and
skipped. The mask is drawn on its image, so it states no other size and spreads only to
same-size copies (the join's rule for masks).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.annotation import Annotation
from covid19_images.sources.catalog.covid_qu_ex import IMAGES, MASK_FOLDERS, PICTURE, place
from covid19_images.sources.parsing import SourceContext

LICENSE = "Kaggle-dataset-terms"


def read(ctx: SourceContext) -> Iterator[Annotation]:
    for relative in ctx.files:
        if not PICTURE.search(relative):
            continue
        where = place(relative)
        if where is None or where[3] not in MASK_FOLDERS:
            continue
        path = PurePosixPath(relative)
        image = (path.parent.parent / IMAGES / path.name).as_posix()
        if not ctx.exists(image):
            ctx.report(f"mask without an image at {image}; skipped", path=relative)
            continue
        yield Annotation(
            kind="mask",
            path=relative,
            name=MASK_FOLDERS[where[3]],
            targets=[("", image)],
            value="255",
            license=LICENSE,
        )
