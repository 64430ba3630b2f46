"""BrixIA/Brixia-score-COVID-19: Brixia severity scores and copies of the scored X-rays.

Layout: ``data/public-annotations.csv`` (UTF-8 BOM; ``filename``, zone scores ``S-A`` ..
``S-F`` and ``S-Global`` by a senior radiologist, ``J-*`` by a junior one) and
``data/public-cohen-subset/<filename>``, the scored images. ``src/`` is model code.

Why it looks the way it does:

* The images are copies of ieee8023 files (most byte-identical, some re-encoded or
  renamed, 7 from Brescia). They are rows like any other: the duplicate groups put each
  with the ieee8023 file it copies, and loaders serve one image per group. The CSV states
  no finding (the subset mixes COVID-19 with ARDS, Pneumocystis, Klebsiella ...), so the
  label is ``unknown`` here and the ieee8023 row of the same picture carries the finding.
* The scores are annotations, read by :mod:`.annotations`, not columns of the manifest.
* No patient ids are published; each image is its own split group unless its duplicate
  group ties it to an ieee8023 patient.
"""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.schema import Entry
from covid19_images.sources.parsing import SourceContext, column

SCORES = "data/public-annotations.csv"
IMAGES = "data/public-cohen-subset"


def parse(ctx: SourceContext) -> Iterator[Entry]:
    for row in ctx.metadata_rows(SCORES) or ():
        where = row["_row"]
        filename = column(row, "filename")
        if not filename:
            ctx.report("row has no filename", path=SCORES, row=where)
            continue
        relative = f"{IMAGES}/{filename}"
        if not ctx.require(relative, where, SCORES):
            continue
        yield Entry(path=relative, modality="xray", label="unknown", view="unknown", row=where)
