"""Figure1 COVID-19 chest X-ray initiative (agchung, COVID-Net source): ``metadata.csv``.

The metadata has no file-name column: the image is ``images/<patientid>.jpg`` or ``.png``
(both occur), so the file is found by trying the image extensions, case-insensitively.
A letter suffix on the id (``COVID-00003a``, ``COVID-00003b``) marks several images of one
patient, so the suffix is stripped for ``patient_id`` to keep them in one split group.

``finding`` is COVID-19, "No finding", Pneumonia or blank; blank means the submitter gave no
diagnosis, so it becomes ``unknown``, never ``normal``. ``view`` uses ``AP erect`` besides
AP/PA and is often blank. ``age`` is free text ("50+", "early 40s"): numbers are kept as
years, the raw text goes to ``extra["age_raw"]`` whenever it is not a plain number.
Images without a metadata row are reported, as are rows without an image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import parse_age
from covid19_images.sources.layouts.covidnet import IMAGE_SUFFIXES, IMAGES, METADATA, parse_metadata
from covid19_images.sources.parsing import SourceContext, column

EXTENSIONS = IMAGE_SUFFIXES
_SUFFIXED = re.compile(r"^(.*\d)[a-z]$")


def patient_of(patientid: str) -> str:
    """``COVID-00003b`` -> ``COVID-00003``: the letter only numbers images of one patient."""
    match = _SUFFIXED.match(patientid)
    return match.group(1) if match else patientid


def image_index(files: list[str]) -> dict[tuple[str, str], str]:
    """``(stem, lower-case extension) -> path`` for every image directly under ``images/``."""
    found: dict[tuple[str, str], str] = {}
    for relative in files:
        path = PurePosixPath(relative)
        if path.parent.as_posix() == IMAGES and path.suffix.lower() in EXTENSIONS:
            found[(path.stem, path.suffix.lower())] = relative
    return found


def _age(raw: str) -> tuple[float | None, dict[str, str]]:
    age = parse_age(raw)
    plain = re.fullmatch(r"\d+(?:\.\d+)?", raw.strip()) is not None
    return age, ({} if plain or not raw else {"age_raw": raw})


def _find(index: dict[tuple[str, str], str], patientid: str) -> list[str]:
    return [index[(patientid, ext)] for ext in EXTENSIONS if (patientid, ext) in index]


def parse(ctx: SourceContext) -> Iterator[Entry]:
    index = image_index(ctx.files)

    def image_of(row: dict[str, str]) -> str | None:
        where, patientid = row["_row"], column(row, "patientid")
        if not patientid:
            ctx.report("row has no patientid, so no image name", path=METADATA, row=where)
            return None
        found = _find(index, patientid)
        if not found:
            ctx.report(f"no {IMAGES}/{patientid}.jpg/.png in the checkout for this row", path=METADATA, row=where)
            return None
        if len(found) > 1:
            ctx.report(f"several images for {patientid}: {found}; indexed {found[0]}", path=METADATA, row=where)
        return found[0]

    def facts(row: dict[str, str]) -> tuple[str, float | None, dict[str, str]]:
        age, age_extra = _age(column(row, "age"))
        return patient_of(column(row, "patientid")), age, age_extra

    yield from parse_metadata(ctx, index.values(), image_of, facts)
