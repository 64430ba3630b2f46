"""SIIM's opacity boxes (``train_image_level.csv``) and study labels (``train_study_level.csv``).

Boxes: the ``label`` column is the competition's own target, ``opacity 1 x0 y0 x1 y1`` per box
(corners, pixels of the DICOM) or ``none 1 0 0 1 1``; the ``boxes`` column repeats them as
``{'x', 'y', 'width', 'height'}`` dicts written with single quotes (a Python literal, not JSON).
Both are read: each ``opacity`` group is one ``box`` annotation ``lung_opacity`` (the name RSNA's
boxes have), and a ``boxes`` column that disagrees with it (count or corners) is reported with
its row. The image is found by its id (``<image>_image`` = the DICOM's file stem); a row whose
image is not here (a partial download) is summarised in one problem. Every row also gives its
image a ``finding`` ``opacity``, ``1`` with boxes and ``0`` for ``none``: the competition's
image-level target, so ``target="multilabel", vocabulary="siim"`` tells "read, no opacity" from
"not read" (an image without a row gets no ``opacity`` finding).

Study labels: one ``finding`` annotation per study column and image of the study, value ``1`` for
the class the radiologists chose and ``0`` for the three others, named as RICORD-1c's MD.ai labels
are (``typical_appearance`` ...), so the two re-reads of one picture line up.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from covid19_images.core.annotation import Annotation
from covid19_images.sources.catalog.siim_covid19_detection import (
    IMAGES,
    STUDIES,
    STUDY_COLUMNS,
    image_files,
    study_labels,
)
from covid19_images.sources.parsing import SourceContext, column, iter_rows

LICENSE = "SIIM-FISABIO-RSNA-competition-terms"
BOX_NAME = "lung_opacity"
MAX_FIELD = 10_000  # characters of a boxes/label field: the real ones hold at most a handful of boxes


def finding_name(study_column: str) -> str:
    return re.sub(r"\W+", "_", study_column.lower()).strip("_")


def label_boxes(value: str) -> list[tuple[float, float, float, float]] | None:
    """The ``opacity`` corners of a ``label`` field; [] for ``none 1 0 0 1 1``; None when malformed."""
    words = value.split()
    if len(words) % 6 or len(value) > MAX_FIELD:
        return None
    boxes = []
    for start in range(0, len(words), 6):
        kind, _confidence, *corners = words[start : start + 6]
        try:
            x0, y0, x1, y1 = (float(c) for c in corners)
        except ValueError:
            return None
        if kind == "none":
            continue
        if kind != "opacity" or not (0 <= x0 < x1 and 0 <= y0 < y1):
            return None
        boxes.append((x0, y0, x1, y1))
    return boxes


def dict_boxes(value: str) -> list[tuple[float, float, float, float]] | None:
    """The corners of a ``boxes`` field (single-quoted dicts); [] when empty; None when malformed."""
    if not value.strip():
        return []
    if len(value) > MAX_FIELD:
        return None
    try:
        items = ast.literal_eval(value)  # a literal only: never evaluates code
        return [(float(i["x"]), float(i["y"]), float(i["x"]) + float(i["width"]), float(i["y"]) + float(i["height"]))
                for i in items]  # fmt: skip
    except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError):
        return None


def _agree(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        abs(p - q) < 1e-3 for u, v in zip(a, b, strict=True) for p, q in zip(u, v, strict=True)
    )


def read(ctx: SourceContext) -> Iterator[Annotation]:
    images = image_files(ctx, "train")
    yield from _boxes(ctx, images)
    by_study: dict[str, list[str]] = {}
    for path in images.values():
        by_study.setdefault(path.split("/")[1], []).append(path)
    for study, (chosen, row) in study_labels(ctx).items():
        for path in sorted(by_study.get(study, ())):
            for name in STUDY_COLUMNS:
                yield Annotation(
                    kind="finding",
                    path=STUDIES,
                    name=finding_name(name),
                    targets=[("", path)],
                    value="1" if name == chosen else "0",
                    license=LICENSE,
                    row=row,
                )


def _boxes(ctx: SourceContext, images: dict[str, str]) -> Iterator[Annotation]:
    if not ctx.exists(IMAGES):
        return
    frame = ctx.read_csv(IMAGES)
    absent: list[str] = []
    for row in iter_rows(frame) if frame is not None else ():
        image = column(row, "id").removesuffix("_image")
        boxes = label_boxes(column(row, "label"))
        if boxes is None:
            ctx.report(f"label {column(row, 'label')[:80]!r} is not opacity/none groups; skipped", path=IMAGES,
                       row=row["_row"])  # fmt: skip
            continue
        listed = dict_boxes(column(row, "boxes"))
        if listed is None or not _agree(listed, boxes):
            ctx.report("boxes column disagrees with the label column; the label's boxes kept", path=IMAGES,
                       row=row["_row"])  # fmt: skip
        if image not in images:
            absent.append(image)
            continue
        study = column(row, "StudyInstanceUID")
        if study and images[image].split("/")[1] != study:
            ctx.report(f"StudyInstanceUID {study} is not the image's study folder", path=IMAGES, row=row["_row"])
        yield Annotation(
            kind="finding",
            path=IMAGES,
            name="opacity",
            targets=[("", images[image])],
            value="1" if boxes else "0",
            license=LICENSE,
            row=row["_row"],
        )
        for x0, y0, x1, y1 in boxes:
            yield Annotation(
                kind="box",
                path=IMAGES,
                name=BOX_NAME,
                targets=[("", images[image])],
                value="1",
                box=(x0, y0, x1, y1),
                license=LICENSE,
                row=row["_row"],
            )
    if absent:
        ctx.report(
            f"{len(absent)} rows name an image not in train/ (e.g. {', '.join(absent[:3])}); not joined",
            path=IMAGES,
        )
