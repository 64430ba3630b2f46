"""A TCIA CT collection whose subjects are ``<COLLECTION>-<MRN>`` folders (MIDRC-RICORD-1a, -1b).

The series are read by :mod:`covid19_images.sources.layouts.dicom_study` (headers only, axial /
localizer / reformat roles, slice order by position), so the two TCIA landings both work: the
Data Retriever's ``<Collection>/<subject>/<study folder>/<series folder>/<n>-<m>.dcm`` and the
NBIA API's ``<PatientID>/<StudyUID>/<SeriesUID>/``. The patient is the MRN of the subject folder
(``419639-000082``), TCIA's de-identified id, the same numbering RICORD-1c uses, so a person keeps
one id in every RICORD release; a file outside any subject folder keeps the pseudonymised
PatientID and is reported. The label comes from ``options: {label: ...}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.sources.layouts import dicom_study
from covid19_images.sources.parsing import SourceContext

OPTIONS = {**dicom_study.OPTIONS, "subject_prefix": str}


def subject_mrn(relative: str, prefix: str) -> str:
    """The MRN of the first ``<prefix><MRN>`` folder of ``relative`` ('' when there is none)."""
    pattern = re.compile(rf"^{re.escape(prefix)}(?P<mrn>[A-Za-z0-9]+-\d+)$", re.IGNORECASE)
    for part in PurePosixPath(relative).parts[:-1]:
        if found := pattern.match(part):
            return found.group("mrn")
    return ""


def parse(ctx: SourceContext) -> Iterator[Entry]:
    prefix = str(ctx.option("subject_prefix", "") or "")
    outside = 0
    for entry in dicom_study.parse(ctx):
        mrn = subject_mrn(entry.path, prefix) if prefix else ""
        if prefix and not mrn:
            outside += 1
            if outside == 1:
                ctx.report(f"DICOM outside a {prefix}<MRN>/ subject folder; patient from its header", path=entry.path)
        yield replace(entry, patient_id=mrn) if mrn else entry
