"""The folder layouts a TCIA collection arrives in, shared by the TCIA sources (RICORD-1c, NY-SBU).

A TCIA series lands in one of two layouts, and both must parse the same:

* the NBIA Data Retriever's descriptive folders, ``[manifest-<n>/]<Collection>/<PatientID>/<study
  folder>/<series folder>/<n>-<m>.dcm``: the study folder is ``<MM-DD-YYYY>-<StudyID or NA>-<StudyDescription>-
  <last 5 characters of the StudyInstanceUID>``, the series folder ``<SeriesNumber>.000000-
  <SeriesDescription or NA>-<last 5 of the SeriesInstanceUID>``;
* what ``covid19-images fetch`` lands from the NBIA REST API (``getImage`` per series),
  ``<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/<file>.dcm``.

COVIDx and COVID-Net name images after the Data Retriever's folders, so :func:`retriever_folders`
gives those names in either layout (from the folders, or rebuilt from the DICOM header when the
folders are UIDs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from covid19_images.sources.dicom_header import text
from covid19_images.sources.parsing import SourceContext

#: the extra header tags :func:`retriever_folders` reads (beside the portal parsers' usual ones)
RETRIEVER_TAGS = ("StudyDate", "StudyID", "StudyDescription", "SeriesNumber", "SeriesDescription")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")


def series_dicoms(
    ctx: SourceContext, patient: re.Pattern[str], layout: str
) -> Iterator[tuple[str, re.Match, str, str]]:
    """``(path, patient match, study folder, series folder)`` of every ``.dcm`` at ``<patient>/<study>/<series>/``.

    The patient folder is the first path part ``patient`` matches (anything above it, such as
    ``manifest-<n>/<Collection>/``, is ignored); a DICOM anywhere else is reported once, with
    ``layout`` saying where it should be, and skipped.
    """
    for relative in ctx.files:
        if not relative.lower().endswith(".dcm"):
            continue
        parts = PurePosixPath(relative).parts
        index = next((i for i, part in enumerate(parts) if patient.match(part)), None)
        if index is None or len(parts) - index != 4:
            ctx.report(f"DICOM outside {layout}; not indexed", path=relative)
            continue
        yield relative, patient.match(parts[index]), parts[index + 1], parts[index + 2]


def is_uid(folder: str) -> bool:
    """Whether a folder name is a DICOM UID (the NBIA API landing) rather than a descriptive name."""
    return bool(_UID.match(folder))


def _date(value: str) -> str:
    return f"{value[4:6]}-{value[6:8]}-{value[:4]}" if re.fullmatch(r"\d{8}", value) else "NA"


def retriever_folders(ds: Any, study: str, series: str) -> tuple[str, str]:
    """The Data Retriever's ``(study folder, series folder)`` names of a DICOM found in ``study/series``.

    Descriptive folders are returned as they are; UID folders (a fetch through the NBIA API) are
    named from the header, the way the Data Retriever names them.
    """
    if not is_uid(study) and not is_uid(series):
        return study, series
    study_uid, series_uid = text(ds, "StudyInstanceUID") or study, text(ds, "SeriesInstanceUID") or series
    described = "-".join(
        (_date(text(ds, "StudyDate")), text(ds, "StudyID") or "NA", text(ds, "StudyDescription") or "NA")
    )
    number = text(ds, "SeriesNumber")
    number = f"{int(number)}.000000" if number.isdigit() else "NA"
    return (
        f"{described}-{study_uid[-5:]}" if is_uid(study) else study,
        f"{number}-{text(ds, 'SeriesDescription') or 'NA'}-{series_uid[-5:]}" if is_uid(series) else series,
    )
