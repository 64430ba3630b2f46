"""v7labs/covid-19-xray-dataset: lung masks for other sources' X-rays, no images.

Layout: ``annotations/all-images-semantic-masks/<darwin id>.png`` (one channel, values
from ``class_mapping.csv``: 0 background, 127 Ignore, 255 Lung) and
``annotations/covid-only.zip``, Darwin JSON files ``<darwin id>.json`` whose
``image.original_filename`` is the ieee8023 file name and ``image.width``/``height`` its
size. The X-rays themselves are not in the repository.

Why it looks the way it does:

* An annotation-only source: ``parse`` yields no manifest rows (there are no images to
  row); :mod:`.annotations` yields the masks and ``manifest.annotations`` joins them.
* Only the ids in ``covid-only.zip`` can be joined. The others (Zhang Lab and non-COVID
  ieee8023 pictures) are named only in ``all-images.zip``; without it a mask is reported,
  never guessed onto an image by size or order.
* ``Ignore`` (127) marks pacemakers, tubes and markup over the lungs; the README asks to
  mask them out because they correlate with sick patients.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.schema import Entry
from covid19_images.sources.parsing import SourceContext

MASKS = "annotations/all-images-semantic-masks"
CLASS_MAPPING = f"{MASKS}/class_mapping.csv"
DARWIN_ZIP = "annotations/covid-only.zip"


def mask_files(ctx: SourceContext) -> list[str]:
    return [f for f in ctx.files_under(MASKS) if f.lower().endswith(".png")]


def parse(ctx: SourceContext) -> Iterator[Entry]:
    masks = mask_files(ctx)
    if not masks:
        ctx.report(f"no masks under {MASKS}; nothing to annotate", path=MASKS, level="error")
        return
    ctx.report(
        f"annotation-only source: {len(masks)} lung masks, no images; they are joined to other sources' "
        "images in manifests/annotations.csv",
        path=MASKS,
        level="info",
    )
    yield from ()  # an annotation-only source contributes no image rows
