"""COVID-CT-MD (figshare), a portal source: COVID-19, community-acquired pneumonia and normal chest CT.

Written against the real ``Index.csv``, ``Slice-level-labels.npy``,
``Slice-level-labels-updated-1.npy``, ``README.md``, the sample folder's file listing and six
DICOM header dumps in ``../shared/upstream-portal/covid-ct-md/``. Layout once fetched::

    COVID-19 subjects/P001/98C14734-ASSH_1.dcm     (or P002/IM0001.dcm)
    Cap subjects/cap001/...
    Normal subjects/normal001/...
    Index.csv, Slice-level-labels-updated-1.npy

Why it looks the way it does:

* One entry per DICOM slice; the diagnosis is the top folder (``Index.csv``'s ``Relative Path``
  says ``./COVID-19/`` and ``./CAP/``, which are not the folder names, so the folders decide).
  CAP is ``pneumonia`` / ``community-acquired``.
* The patient is the folder (``P001``, ``cap001``, ``normal012``): the DICOM PatientID is that
  name for some patients and the centre's code (``98C14734-ASSH``) for others.
* ``extra.series_uid`` groups a patient's slices into one volume (``volumes=True`` orders them by
  position, never by name: ``98C14734-ASSH_10.dcm`` sorts before ``_2``).
* Slice-level infection labels are annotations (``annotations.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.sources.dicom_header import read_header, text
from covid19_images.sources.parsing import SourceContext

#: top folder -> (raw finding, label, label_detail)
FOLDERS = {
    "COVID-19 subjects": ("COVID-19", "covid-19", ""),
    "Cap subjects": ("CAP", "pneumonia", "community-acquired"),
    "Normal subjects": ("normal", "normal", ""),
}
_PATIENT = re.compile(r"^(P|cap|normal)\d{3}$")


def slices_of(ctx: SourceContext) -> dict[str, list[str]]:
    """Patient folder (``COVID-19 subjects/P001``) -> its DICOM files."""
    found: dict[str, list[str]] = {}
    for name in ctx.files:
        parts = PurePosixPath(name).parts
        if len(parts) == 3 and parts[0] in FOLDERS and name.lower().endswith(".dcm"):
            found.setdefault(f"{parts[0]}/{parts[1]}", []).append(name)
    return found


def parse(ctx: SourceContext) -> Iterator[Entry]:
    patients = slices_of(ctx)
    if not patients:
        ctx.report(f"no DICOM under {', '.join(FOLDERS)}; nothing to index", level="error")
    for folder, files in sorted(patients.items()):
        top, patient = folder.split("/")
        if not _PATIENT.match(patient):
            ctx.report(f"patient folder {patient!r} is not P/cap/normal + 3 digits; kept", path=folder)
        finding, label, detail = FOLDERS[top]
        for name in sorted(files):
            header = read_header(ctx, name)
            series = text(header, "SeriesInstanceUID") if header is not None else ""
            yield Entry(
                path=name,
                modality="ct",
                finding=finding,
                label=label,
                label_detail=detail,
                view="axial",
                patient_id=patient,
                extra={"series_uid": series} if series else {},
            )
