"""Mask volumes (NIfTI) drawn on a CT volume: which classes each slice holds, read slice by slice.

MosMedData's lesion masks and Zenodo 3757476's lung and infection masks are label volumes the
size of their CT volume. An annotation row per slice and class (``frame`` = slice) is what lets
``task="segmentation"`` serve the 2-D slices of an annotated volume, and ``volumes=True`` the
whole mask. A slice with none of the classes gets one ``empty_name`` row (value 0): it was
annotated, as holding no lesion. Read slice by slice (a 300-slice float64 mask is 600 MB whole),
after checking the header against the frame and pixel budgets; a mask of another shape than its
volume, or with a value that is not one of the classes, is reported and not used.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from covid19_images.core.annotation import Annotation
from covid19_images.imaging.budget import OverBudget, check_frame_pixels, check_frames
from covid19_images.sources.parsing import SourceContext


def slice_classes(ctx: SourceContext, mask: str, image: str, classes: dict[int, str]) -> list[set[int]] | None:
    """The class values present in each slice of ``mask``, or None (reported) when it cannot be used."""
    import nibabel

    try:
        proxy = nibabel.load(str(ctx.directory / mask)).dataobj
        image_shape = tuple(int(n) for n in nibabel.load(str(ctx.directory / image)).shape[:3])
        shape = tuple(int(n) for n in proxy.shape)
        if len(shape) >= 2:
            check_frame_pixels(shape[0], shape[1], "mask volume")
            check_frames(shape[2] if len(shape) >= 3 else 1, "mask volume")
    except OverBudget as err:
        ctx.report(f"{err}; no annotations", path=mask)
        return None
    except Exception as err:  # noqa: BLE001 - nibabel raises many kinds; one bad file is a problem
        ctx.report(f"unreadable mask volume ({type(err).__name__}: {err}); no annotations", path=mask)
        return None
    if len(shape) < 3 or shape[:3] != image_shape:
        ctx.report(f"mask shape {shape} is not its volume's {image_shape} ({image}); no annotations", path=mask)
        return None
    present: list[set[int]] = []
    unknown: set[float] = set()
    allowed = [0, *classes]
    try:
        for k in range(shape[2]):
            values = np.unique(np.asarray(proxy[:, :, k]))
            known = np.isin(values, allowed)
            unknown |= {float(v) for v in values[~known][:8]}
            present.append({int(v) for v in values[known]})
    except Exception as err:  # noqa: BLE001 - a cut gzip stream fails part-way
        ctx.report(f"unreadable mask volume ({type(err).__name__}: {err}); no annotations", path=mask)
        return None
    if unknown:
        shown = ", ".join(f"{v:g}" for v in sorted(unknown)[:8])
        ctx.report(f"mask values {shown} are not among {sorted(allowed)}; mask not used", path=mask)
        return None
    return present


def mask_rows(
    ctx: SourceContext,
    mask: str,
    image: str,
    classes: dict[int, str],
    *,
    empty_name: str,
    rater: str,
    license: str,
) -> Iterator[Annotation]:
    """One ``mask`` annotation per slice and class present (``empty_name`` for a slice with none)."""
    present = slice_classes(ctx, mask, image, classes)
    for k, values in enumerate(present or []):
        names = [(v, n) for v, n in classes.items() if v in values] or [(0, empty_name)]
        for value, name in names:
            yield Annotation(
                kind="mask",
                path=mask,
                name=name,
                value=str(value),
                rater=rater,
                targets=[("", image)],
                frame=k,
                license=license,
            )
