"""The Radiography DB's lung masks: ``<Class>/masks/<name>.png`` beside ``<Class>/images/<name>.png``.

Masks exist in the current release only (0 background, 255 lung). A mask without its image is
reported and skipped; the mask is drawn at its own resolution (the README gives 299x299 for
images, the workbooks 256*256), so no image size is claimed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.annotation import Annotation
from covid19_images.sources.catalog.covid19_radiography_db import class_folders
from covid19_images.sources.parsing import SourceContext

LICENSE = "Radiography-DB-terms"


def read(ctx: SourceContext) -> Iterator[Annotation]:
    for folder in class_folders(ctx):
        for relative in ctx.files_under(f"{folder}/masks"):
            path = PurePosixPath(relative)
            if path.suffix.lower() != ".png" or str(path.parent) != f"{folder}/masks":
                continue
            image = f"{folder}/images/{path.name}"
            if not ctx.exists(image):
                ctx.report(f"mask without an image at {image}; skipped", path=relative)
                continue
            yield Annotation(
                kind="mask", path=relative, name="lungs", value="255", targets=[("", image)], license=LICENSE
            )
