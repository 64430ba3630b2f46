"""Zenodo 3757476's masks per slice: lungs (``lung_mask/``) and infection (``infection_mask/``).

The record's description (Ma et al., Medical Physics 2021): left lung, right lung and infection
were delineated by two radiologists and verified by a senior one; ``Lung_Mask`` holds 1 = left
lung, 2 = right lung; ``Infection_Mask`` 1 = infection; ``Lung_and_Infection_Mask`` 1, 2 and
3 = infection (the union, not read again here). The value meanings are those the Kaggle mirror's
description gives [unverified against the real masks: none is held here]; a value outside them is
reported and the mask not used (``sources/mask_volumes.py``). One row per slice and class (``frame`` = slice;
``no_lung`` / ``no_infection`` for an empty slice), so ``mask_source="ct-seg-lung"`` and
``"ct-seg-infection"`` serve 2-D slices, and per volume with ``volumes=True``.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.annotation import Annotation
from covid19_images.sources.catalog.covid19_ct_seg import parse
from covid19_images.sources.mask_volumes import mask_rows
from covid19_images.sources.parsing import SourceContext

LICENSE = "CC-BY-NC-SA-4.0"
#: mask folder -> (value -> class name, the name of an empty slice)
MASKS = {
    "lung_mask": ({1: "left_lung", 2: "right_lung"}, "no_lung"),
    "infection_mask": ({1: "infection"}, "no_infection"),
}


def read(ctx: SourceContext) -> Iterator[Annotation]:
    quiet = SourceContext(ctx.spec, ctx.directory, ctx.files)  # the parser's problems are the build's
    for entry in parse(quiet):
        for folder, (classes, empty) in MASKS.items():
            if entry.extra.get(folder):
                yield from mask_rows(
                    ctx, entry.extra[folder], entry.path, classes, empty_name=empty, rater="senior", license=LICENSE
                )
