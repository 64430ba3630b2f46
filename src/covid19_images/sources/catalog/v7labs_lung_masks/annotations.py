"""V7 lung masks joined through ``covid-only.zip``'s Darwin JSON (id -> ieee8023 file name).

The join is checked against the image size the JSON states, and the mask file is checked
against what the JSON and ``class_mapping.csv`` say about it: its own size must be that
size and its values must be the documented classes (0 background, 127 Ignore, 255 Lung),
so a renamed or re-encoded ieee8023 file, or a mask that is not one, is reported rather
than given a misaligned or meaningless mask. The zip's members are read as streams within
a budget, and each Darwin JSON on its own: one hostile member is one problem.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.annotation import Annotation
from covid19_images.sources.catalog.v7labs_lung_masks import CLASS_MAPPING, DARWIN_ZIP, mask_files
from covid19_images.sources.parsing import SourceContext, column, iter_rows
from covid19_images.sources.structured import UnreadableFile, loads_json, read_member

LICENSE = "CC-BY-4.0"
IEEE8023 = "ieee8023-covid-chestxray"
#: class_mapping.csv as published; read from the checkout when present
DEFAULT_CLASSES = {"__background__": "0", "Ignore": "127", "Lung": "255"}
#: one Darwin JSON is a few KB; the whole zip's JSON a few MB
MEMBER_BUDGET = 16 << 20
ARCHIVE_BUDGET = 512 << 20


def darwin_index(ctx: SourceContext) -> dict[str, tuple[str, int | None, int | None]]:
    """Darwin id -> (original file name, width, height) from ``covid-only.zip``."""
    index: dict[str, tuple[str, int | None, int | None]] = {}
    if not ctx.exists(DARWIN_ZIP):
        ctx.report(f"no {DARWIN_ZIP}: no mask can be joined to an image", path=DARWIN_ZIP)
        return index
    spent = 0
    try:
        with zipfile.ZipFile(ctx.directory / DARWIN_ZIP) as archive:
            for info in archive.infolist():
                name = PurePosixPath(info.filename)
                if info.is_dir() or name.suffix.lower() != ".json" or name.name.startswith("."):
                    continue
                if spent > ARCHIVE_BUDGET:
                    ctx.report(
                        f"stopped reading after {spent:,} bytes of JSON (budget {ARCHIVE_BUDGET:,}); "
                        "the remaining members are not joined",
                        path=DARWIN_ZIP,
                        level="error",
                    )
                    break
                try:
                    data = read_member(archive, info, MEMBER_BUDGET)
                    spent += len(data)
                    document = loads_json(data)
                    image = document.get("image", {}) if isinstance(document, dict) else None
                    if not isinstance(image, dict):
                        raise UnreadableFile("no image object")
                except UnreadableFile as err:
                    ctx.report(f"{info.filename}: unreadable Darwin JSON ({err})", path=DARWIN_ZIP)
                    continue
                original = str(image.get("original_filename", "")).strip()
                if not original:
                    ctx.report(f"{info.filename}: no image.original_filename", path=DARWIN_ZIP)
                    continue
                width, height = image.get("width"), image.get("height")
                index[name.stem] = (
                    original,
                    width if type(width) is int and width > 0 else None,
                    height if type(height) is int and height > 0 else None,
                )
    except (OSError, zipfile.BadZipFile) as err:
        ctx.report(f"unreadable zip archive ({err})", path=DARWIN_ZIP, level="error")
    return index


def class_values(ctx: SourceContext) -> dict[str, str]:
    """Class name -> mask value from ``class_mapping.csv``; values must be whole numbers 0-255."""
    if not ctx.exists(CLASS_MAPPING):
        return dict(DEFAULT_CLASSES)
    frame = ctx.read_csv(CLASS_MAPPING)
    found: dict[str, str] = {}
    for row in iter_rows(frame) if frame is not None else ():
        name, value = column(row, "class_name"), column(row, "class_idx")
        if not value.isascii() or not value.isdigit() or int(value) > 255:
            ctx.report(
                f"class_idx {value!r} of {name!r} is not a mask value 0-255; skipped", CLASS_MAPPING, row["_row"]
            )
            continue
        found[name] = str(int(value))
    if "Lung" not in found:
        ctx.report("no Lung class; using the published mapping (0, 127, 255)", path=CLASS_MAPPING)
        return dict(DEFAULT_CLASSES)
    return found


def check_mask(ctx: SourceContext, mask: str, size: tuple[int | None, int | None], allowed: set[int]) -> bool:
    """The mask file is what the JSON and the class mapping say: that size, only those values."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(ctx.directory / mask) as image:
            actual = image.size
            colors = image.getcolors(256) if image.mode == "L" else None
            mode = image.mode
    except (OSError, UnidentifiedImageError) as err:
        ctx.report(f"unreadable mask ({err}); not joined", path=mask)
        return False
    if mode != "L" or colors is None:
        ctx.report(f"mask is a {mode} image, not one 8-bit channel of class values; not joined", path=mask)
        return False
    if None not in size and actual != size:
        stated = f"{size[0]}x{size[1]}"
        ctx.report(f"mask is {actual[0]}x{actual[1]} but {DARWIN_ZIP} says its image is {stated}; not joined", mask)
        return False
    unknown = sorted({value for _, value in colors} - allowed)
    if unknown:
        ctx.report(f"mask values {unknown[:8]} are not classes of {CLASS_MAPPING} {sorted(allowed)}; not joined", mask)
        return False
    return True


def read(ctx: SourceContext) -> Iterator[Annotation]:
    index = darwin_index(ctx)
    values = class_values(ctx)
    allowed = {int(v) for v in values.values()}
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
        if not check_mask(ctx, mask, (width, height), allowed):
            continue
        yield Annotation(
            kind="mask",
            path=mask,
            name="lung",
            value=values["Lung"],
            rater="annotator",
            targets=[(IEEE8023, f"images/{original}")],
            license=LICENSE,
            width=width,
            height=height,
            row=f"{DARWIN_ZIP} {darwin_id}.json",
            extra={"ignore_value": values.get("Ignore", "127")},
        )
