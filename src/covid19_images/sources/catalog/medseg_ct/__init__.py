"""MedSeg COVID-19 CT segmentation dataset nr.1 (coyotespike/medseg_ct_dataset).

Layout: ``dataset/tr_im.nii`` (training images), ``dataset/tr_mask.nii`` (their masks) and
``dataset/val_im.nii`` (test images, no masks), each one uncompressed 3-D NIfTI holding
many axial slices (100 and 10) cut by MedSeg from SIRM case reports.

Why it looks the way it does:

* One entry per image *volume*, not per slice: the file is the unit the manifest hashes
  and the probe reports ``frames`` = slices; loaders read slice k with
  ``read_pixels(path, frame=k)``.
* The mask is not an image to train a classifier on, so it is not a row of its own; the
  image entry points at it in ``extra.mask`` after checking that its shape matches.
* The ``.nii`` files live in Git LFS (``.gitattributes``: ``*.nii filter=lfs``). A clone
  without git-lfs holds ~130-byte pointer texts under the same names; those are reported
  with the command that fetches the data, and never indexed.
* ``val`` is MedSeg's test set (their README: "val_im are the test images").
* The slices of one volume come from different patients, and which slice belongs to whom
  is not published; ``patient_id`` stays empty so each volume is its own split group
  (all slices of a volume always land in the same split).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_finding
from covid19_images.imaging.formats import is_lfs_pointer, lfs_pointer_message
from covid19_images.sources.parsing import SourceContext

_IMAGE = re.compile(r"^(?P<stem>.*?)_im\.nii(?P<gz>\.gz)?$")
_MASK = re.compile(r"^(?P<stem>.*?)_(mask|msk)\.nii(\.gz)?$")
#: MedSeg's volume prefixes -> the split they were published as.
OFFICIAL_SPLITS = {"tr": "train", "val": "test"}
FINDING = "COVID-19"


def _is_pointer(ctx: SourceContext, relative: str) -> bool:
    try:
        with open(ctx.directory / relative, "rb") as handle:
            return is_lfs_pointer(handle.read(128))
    except OSError:
        return False


def report_lfs_pointer(ctx: SourceContext, relative: str) -> None:
    """Report a Git LFS pointer text found where a volume should be, with the command that fetches it."""
    ctx.report(
        lfs_pointer_message(ctx.spec.path),
        path=relative,
        level="error",
    )


def _shape(ctx: SourceContext, relative: str) -> tuple[int, ...] | None:
    import nibabel
    from nibabel.filebasedimages import ImageFileError

    try:
        return tuple(int(n) for n in nibabel.load(str(ctx.directory / relative)).shape)
    except (ImageFileError, OSError, EOFError, ValueError):
        return None


def find_mask(ctx: SourceContext, image: str) -> str | None:
    """The mask volume published next to ``image`` (``tr_im.nii`` -> ``tr_mask.nii``), if any."""
    path = PurePosixPath(image)
    match = _IMAGE.match(path.name)
    if not match:
        return None
    for name in ctx.files:
        candidate = PurePosixPath(name)
        mask = _MASK.match(candidate.name)
        if candidate.parent == path.parent and mask and mask.group("stem") == match.group("stem"):
            return name
    return None


def _mask_extra(ctx: SourceContext, image: str, mask: str | None) -> dict[str, str]:
    """``{"mask": path}`` when the mask is usable and fits the image; otherwise reported and ``{}``."""
    if mask is None:
        return {}
    if _is_pointer(ctx, mask):
        report_lfs_pointer(ctx, mask)
        return {}
    image_shape, mask_shape = _shape(ctx, image), _shape(ctx, mask)
    if mask_shape is None:
        ctx.report("mask volume is not a readable NIfTI; not linked", path=mask)
        return {}
    if image_shape is not None and mask_shape[:3] != image_shape[:3]:
        ctx.report(f"mask shape {mask_shape} differs from image shape {image_shape}; not linked", path=mask)
        return {}
    return {"mask": mask}


def parse(ctx: SourceContext) -> Iterator[Entry]:
    images = [f for f in ctx.files if _IMAGE.match(PurePosixPath(f).name)]
    if not images:
        ctx.report("no *_im.nii volumes in the checkout; nothing to index", level="error")
        return
    linked: set[str] = set()
    label, detail, _known = harmonise_finding(FINDING)
    for image in images:
        mask = find_mask(ctx, image)
        if mask:
            linked.add(mask)
        if _is_pointer(ctx, image):
            report_lfs_pointer(ctx, image)
            if mask and _is_pointer(ctx, mask):
                report_lfs_pointer(ctx, mask)
            continue
        extra = _mask_extra(ctx, image, mask)
        stem = _IMAGE.match(PurePosixPath(image).name).group("stem")  # type: ignore[union-attr]
        yield Entry(
            path=image,
            modality="ct",
            finding=FINDING,
            label=label,
            label_detail=detail,
            view="axial",
            official_split=OFFICIAL_SPLITS.get(stem.lower(), ""),
            extra=extra,
        )
    for orphan in sorted(f for f in ctx.files if _MASK.match(PurePosixPath(f).name) and f not in linked):
        ctx.report("mask volume without a matching *_im.nii image; not indexed", path=orphan)
