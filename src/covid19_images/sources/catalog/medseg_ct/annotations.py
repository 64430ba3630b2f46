"""MedSeg lesion masks: one row per slice of ``tr_mask.nii`` and class present in it.

MedSeg's description (medicalsegmentation.com/covid19): "the images were segmented by a
radiologist using 3 labels: ground-glass (mask value = 1), consolidation (= 2) and pleural
effusion (= 3)". A slice whose mask holds none of them gets one ``no_lesion`` row (value
0), so a segmentation loader serves the empty slices of an annotated volume too: they are
annotated, as healthy-looking tissue.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from covid19_images.core.annotation import Annotation
from covid19_images.sources.parsing import SourceContext

#: mask value -> class name, from MedSeg's own description
CLASSES = {1: "ground_glass", 2: "consolidation", 3: "pleural_effusion"}
LICENSE = "Unlicense"


def read(ctx: SourceContext) -> Iterator[Annotation]:
    import nibabel

    from covid19_images.sources.catalog.medseg_ct import _IMAGE, _is_pointer, find_mask

    for image in ctx.files:
        if not _IMAGE.match(image.rsplit("/", 1)[-1]):
            continue
        mask = find_mask(ctx, image)
        if mask is None or _is_pointer(ctx, mask) or _is_pointer(ctx, image):
            continue  # the parser reports LFS pointers
        try:
            proxy = nibabel.load(str(ctx.directory / mask)).dataobj
            image_shape = tuple(nibabel.load(str(ctx.directory / image)).shape[:3])
        except Exception as err:  # noqa: BLE001 - nibabel raises many kinds; one bad file is a problem
            ctx.report(f"unreadable mask volume ({err}); no annotations", path=mask)
            continue
        shape = tuple(int(n) for n in proxy.shape)
        if len(shape) < 3 or shape[:3] != image_shape:
            ctx.report(f"mask shape {shape} is not the image's {image_shape}; no annotations", path=mask)
            continue
        present = _classes_per_slice(ctx, mask, proxy, shape[2])
        if present is None:
            continue
        for k, classes in enumerate(present):
            names = [(v, n) for v, n in CLASSES.items() if v in classes] or [(0, "no_lesion")]
            for value, name in names:
                yield Annotation(
                    kind="mask",
                    path=mask,
                    name=name,
                    value=str(value),
                    rater="annotator",
                    targets=[("", image)],
                    frame=k,
                    license=LICENSE,
                )


def _classes_per_slice(ctx: SourceContext, mask: str, proxy, slices: int) -> list[set[int]] | None:
    """The classes each slice holds, or None (reported) when any voxel is not one of MedSeg's
    whole values 0-3: a 1.4 or a 7 is not a class, and rounding it would invent one."""
    present: list[set[int]] = []
    unknown: set[float] = set()
    for k in range(slices):  # slice by slice: a 100-slice float64 volume is 200 MB
        values = np.unique(np.asarray(proxy[:, :, k]))
        known = np.isin(values, [0, *CLASSES])
        unknown |= {float(v) for v in values[~known][:8]}
        present.append({int(v) for v in values[known]})
    if unknown:
        shown = ", ".join(f"{v:g}" for v in sorted(unknown)[:8])
        ctx.report(f"mask values {shown} are not MedSeg classes (whole numbers 0-3); mask not used", path=mask)
        return None
    return present
