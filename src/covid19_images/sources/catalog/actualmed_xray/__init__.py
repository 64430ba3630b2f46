"""Actualmed COVID-19 chest X-ray initiative (agchung, COVID-Net source): ``metadata.csv``.

Same column family as Figure1 plus ``imagename``; the image is ``images/<imagename>``, where
the names are DICOM-UID-like (``CR.1.2.840....png``, many dots), so they are used verbatim.
The file has CRLF line endings (the shared reader copes).

``finding`` is COVID-19, "No finding" or blank. The ``notes`` column explains them: blank is
"Inconclusive" and therefore ``unknown`` (never ``normal``), "No finding" is "Negative
(covid-19 viral infection is excluded)", i.e. a negative test rather than a radiologist's
normal read; that test result and the acquisition date written in the notes go to
``extra``. ``patientid`` is ``ANON<n>``, with several images (and sometimes different
findings over time) per patient.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import parse_age
from covid19_images.sources.layouts.covidnet import IMAGE_SUFFIXES, IMAGES, METADATA, parse_metadata
from covid19_images.sources.parsing import SourceContext, column

_DATE = re.compile(r"date taken \(YYYYMMDD\):\s*(\d{4})(\d{2})(\d{2})", re.IGNORECASE)
_TEST_WORDS = ("negative", "positive", "inconclusive")


def notes_extra(notes: str) -> dict[str, str]:
    """Test result and acquisition date from notes like ``Negative (...), date taken (YYYYMMDD): 20200317``."""
    extra: dict[str, str] = {}
    first = notes.strip().split(",")[0].split("(")[0].strip().lower()
    if first in _TEST_WORDS:
        extra["covid_test"] = first
    date = _DATE.search(notes)
    if date:
        extra["date"] = "-".join(date.groups())
    return extra


def parse(ctx: SourceContext) -> Iterator[Entry]:
    def image_of(row: dict[str, str]) -> str | None:
        name = column(row, "imagename")
        if not name:
            ctx.report("row has no imagename", path=METADATA, row=row["_row"])
            return None
        relative = f"{IMAGES}/{name}"
        return relative if ctx.require(relative, row["_row"], METADATA) else None

    def facts(row: dict[str, str]) -> tuple[str, float | None, dict[str, str]]:
        return column(row, "patientid"), parse_age(column(row, "age")), notes_extra(column(row, "notes"))

    images = [f for f in ctx.files_under(IMAGES) if PurePosixPath(f).suffix.lower() in IMAGE_SUFFIXES]
    yield from parse_metadata(ctx, images, image_of, facts)
