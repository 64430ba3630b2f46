"""STOIC2021's outcome labels per volume: ``finding`` ``covid19`` (RT-PCR) and ``severe`` (death or
intubation at one month), value 1/0, from ``metadata/reference.csv`` (see the parser)."""

from __future__ import annotations

from collections.abc import Iterator

from covid19_images.core.annotation import Annotation
from covid19_images.sources.catalog.stoic2021 import _VOLUME, REFERENCE, reference
from covid19_images.sources.parsing import SourceContext

LICENSE = "CC-BY-NC-4.0"


def read(ctx: SourceContext) -> Iterator[Annotation]:
    quiet = SourceContext(ctx.spec, ctx.directory, ctx.files)  # the parser reports the rows' problems
    rows = reference(quiet)
    for name in sorted(ctx.files):
        match = _VOLUME.match(name)
        if not match or str(int(match.group("id"))) not in rows:
            continue
        line, row = rows[str(int(match.group("id")))]
        for finding, column in (("covid19", "probCOVID"), ("severe", "probSevere")):
            yield Annotation(
                "finding", REFERENCE, finding, [("", name)], row[column].strip(), "",
                license=LICENSE, row=f"{REFERENCE}:{line}",
            )  # fmt: skip
