"""V7 lung masks joined through ``covid-only.zip``'s Darwin JSON (id -> ieee8023 file name).

The join is checked against the image size the JSON states (the mask has that size too),
so a renamed or re-encoded ieee8023 file is reported rather than given a misaligned mask.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.annotation import Annotation
from covid19_images.sources.catalog.v7labs_lung_masks import CLASS_MAPPING, DARWIN_ZIP, mask_files
from covid19_images.sources.parsing import SourceContext, column, iter_rows

LICENSE = "CC-BY-4.0"
IEEE8023 = "ieee8023-covid-chestxray"
#: class_mapping.csv as published; read from the checkout when present
DEFAULT_CLASSES = {"__background__": "0", "Ignore": "127", "Lung": "255"}


def darwin_index(ctx: SourceContext) -> dict[str, tuple[str, int | None, int | None]]:
    """Darwin id -> (original file name, width, height) from ``covid-only.zip``."""
    index: dict[str, tuple[str, int | None, int | None]] = {}
    if not ctx.exists(DARWIN_ZIP):
        ctx.report(f"no {DARWIN_ZIP}: no mask can be joined to an image", path=DARWIN_ZIP)
        return index
    try:
        with zipfile.ZipFile(ctx.directory / DARWIN_ZIP) as archive:
            for member in archive.namelist():
                name = PurePosixPath(member)
                if name.suffix.lower() != ".json" or name.name.startswith("."):
                    continue
                try:
                    image = json.loads(archive.read(member)).get("image", {})
                    original = str(image.get("original_filename", "")).strip()
                except (ValueError, AttributeError, zipfile.BadZipFile) as err:
                    ctx.report(f"{member}: unreadable Darwin JSON ({err})", path=DARWIN_ZIP)
                    continue
                if not original:
                    ctx.report(f"{member}: no image.original_filename", path=DARWIN_ZIP)
                    continue
                width, height = image.get("width"), image.get("height")
                index[name.stem] = (
                    original,
                    int(width) if isinstance(width, int) else None,
                    int(height) if isinstance(height, int) else None,
                )
    except (OSError, zipfile.BadZipFile) as err:
        ctx.report(f"unreadable zip archive ({err})", path=DARWIN_ZIP, level="error")
    return index


def class_values(ctx: SourceContext) -> dict[str, str]:
    if not ctx.exists(CLASS_MAPPING):
        return dict(DEFAULT_CLASSES)
    frame = ctx.read_csv(CLASS_MAPPING)
    found = {column(r, "class_name"): column(r, "class_idx") for r in iter_rows(frame)} if frame is not None else {}
    return found or dict(DEFAULT_CLASSES)


def read(ctx: SourceContext) -> Iterator[Annotation]:
    index = darwin_index(ctx)
    values = class_values(ctx)
    for mask in mask_files(ctx):
        darwin_id = PurePosixPath(mask).stem
        known = index.get(darwin_id)
        if known is None:
            ctx.report(
                f"Darwin id {darwin_id} is not in {DARWIN_ZIP}: its image is named only in all-images.zip, "
                "which the repository snapshot lacks; mask not joined",
                path=mask,
            )
            continue
        original, width, height = known
        yield Annotation(
            kind="mask",
            path=mask,
            name="lung",
            value=values.get("Lung", "255"),
            rater="annotator",
            targets=[(IEEE8023, f"images/{original}")],
            license=LICENSE,
            width=width,
            height=height,
            row=f"{DARWIN_ZIP} {darwin_id}.json",
            extra={"ignore_value": values.get("Ignore", "127")},
        )
