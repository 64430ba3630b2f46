"""COVID-QU-Ex (Kaggle ``anasmohammedtahir/covidqu``): chest X-rays with lung and infection masks.

No file listing or metadata of this set is public (``../shared/upstream-portal/INDEX.md``); the
layout is the one its users' loaders read (torch-em ``covid_qu_ex.py``, third-party notes):

* ``Lung Segmentation Data/Lung Segmentation Data/{Train,Val,Test}/{COVID-19,Non-COVID,Normal}/
  {images,lung masks}/`` - every image with a lung mask of the same name;
* ``Infection Segmentation Data/Infection Segmentation Data/{Train,Val,Test}/{COVID-19,Non-COVID,
  Normal}/{images,lung masks,infection masks}/`` - a subset, with infection masks.

The folders may sit under a prefix (``COVID-QU-Ex_Dataset/``, the archive's own folder): the
parser finds ``<Train|Val|Test>/<class>/images/`` wherever it is. One entry per image: the
class folder is the raw finding (``COVID-19``, ``Non-COVID``, ``Normal``), the split folder the
``official_split``, ``extra.subset`` says which of the two sets holds it. No patient ids are
published, so the builder groups by file; the Infection set's images are copies of Lung set
images and join them by content (duplicate groups). Masks are read by ``annotations.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.sources.parsing import SourceContext

SPLITS = {"train": "train", "val": "val", "test": "test"}
CLASSES = {"covid-19": "COVID-19", "non-covid": "Non-COVID", "normal": "Normal"}
SUBSETS = {"lung segmentation data": "lung", "infection segmentation data": "infection"}
IMAGES = "images"
MASK_FOLDERS = {"lung masks": "lung", "infection masks": "infection"}
PICTURE = re.compile(r"\.(png|jpe?g)$", re.IGNORECASE)


def place(relative: str) -> tuple[str, str, str, str, str] | None:
    """(subset, split, class, folder, file name) of a file in the layout, else None."""
    parts = PurePosixPath(relative).parts
    if len(parts) < 5:
        return None
    split, klass, folder, name = parts[-4], parts[-3], parts[-2], parts[-1]
    subset = next((SUBSETS[p.lower()] for p in reversed(parts[:-4]) if p.lower() in SUBSETS), "")
    if split.lower() not in SPLITS or klass.lower() not in CLASSES or not subset:
        return None
    return subset, SPLITS[split.lower()], CLASSES[klass.lower()], folder.lower(), name


def parse(ctx: SourceContext) -> Iterator[Entry]:
    outside = 0
    for relative in ctx.files:
        if not PICTURE.search(relative):
            continue
        where = place(relative)
        if where is None:
            outside += 1
            if outside == 1:
                ctx.report("picture outside <set>/<Train|Val|Test>/<class>/<folder>/; not indexed", path=relative)
            continue
        subset, split, finding, folder, _name = where
        if folder != IMAGES:
            if folder not in MASK_FOLDERS:
                ctx.report(f"unknown folder {folder!r} (expected images, lung masks, infection masks)", path=relative)
            continue
        label, detail = ctx.label(finding, relative, "")
        yield Entry(
            path=relative,
            modality="xray",
            finding=finding,
            label=label,
            label_detail=detail,
            official_split=split,
            extra={"subset": subset},
        )
    if outside > 1:
        ctx.report(f"{outside} pictures outside the layout in all; not indexed")
