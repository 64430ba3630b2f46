"""STOIC2021 (AWS Open Data ``s3://stoic2021-training``), a portal source: CT as MetaImage ``.mha``.

Written against the real ``metadata/reference.csv`` (its first three columns, 2,000 rows, in
``../shared/upstream-portal/stoic2021/``) and the bucket layout the challenge documents::

    data/mha/<PatientID>.mha        (PatientID an integer, not padded: 6 .. 10729, with gaps)
    metadata/reference.csv          PatientID,probCOVID,probSevere

Why it looks the way it does:

* One entry per volume; the patient is the ``PatientID`` (one scan per patient).
* ``probCOVID`` / ``probSevere`` hold 0/1 integers despite their names: RT-PCR result and severe
  outcome (death or intubation at one month). Every patient was scanned for suspected COVID-19,
  so an RT-PCR-negative scan is ``other`` / ``non-covid``, never ``normal``. Severe implies
  COVID-19 (no ``0,1`` row in the real file); a ``0,1`` row is reported and its severity kept.
* The outcome labels are annotations (``annotations.py``: ``finding`` ``covid19`` and
  ``severe``), so ``target="multilabel"`` and per-image findings serve them.
* A volume without a reference row is indexed with an unknown label and reported; a row whose
  volume is absent is reported (a partial fetch is normal: ``fetch --only``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from covid19_images.core.schema import Entry
from covid19_images.sources.parsing import SourceContext, iter_rows

REFERENCE = "metadata/reference.csv"
_VOLUME = re.compile(r"^data/mha/(?P<id>\d+)\.mha$")


def reference(ctx: SourceContext) -> dict[str, tuple[int, dict[str, str]]]:
    """PatientID -> (CSV line, row); rows with a bad id or values are reported and left out."""
    frame = ctx.read_csv(REFERENCE) if REFERENCE in ctx.files else None
    if frame is None:
        ctx.report(f"no {REFERENCE}; volumes indexed without labels", path=REFERENCE)
        return {}
    rows: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in enumerate(iter_rows(frame), start=2):
        patient = row.get("PatientID", "").strip()
        values = (row.get("probCOVID", "").strip(), row.get("probSevere", "").strip())
        if not patient.isdigit() or any(v not in ("0", "1") for v in values):
            ctx.report(f"PatientID {patient!r}, probCOVID/probSevere {values}: not an id and 0/1; row skipped",
                       path=REFERENCE, row=str(line))  # fmt: skip
            continue
        if values == ("0", "1"):
            ctx.report("severe outcome without COVID-19 (never in the real file); label kept as given",
                       path=REFERENCE, row=str(line))  # fmt: skip
        rows[str(int(patient))] = (line, row)
    return rows


def parse(ctx: SourceContext) -> Iterator[Entry]:
    rows = reference(ctx)
    seen: set[str] = set()
    for name in sorted(ctx.files):
        match = _VOLUME.match(name)
        if not match:
            continue
        patient = str(int(match.group("id")))
        seen.add(patient)
        if patient not in rows:
            ctx.report(f"no row for PatientID {patient} in {REFERENCE}; label unknown", path=name)
            yield Entry(path=name, modality="ct", finding="", view="axial", patient_id=patient)
            continue
        line, row = rows[patient]
        covid, severe = row["probCOVID"].strip() == "1", row["probSevere"].strip() == "1"
        yield Entry(
            path=name,
            modality="ct",
            finding="COVID-19" if covid else "non-COVID",
            label="covid-19" if covid else "other",
            label_detail=("severe outcome" if severe else "") if covid else "non-covid",
            view="axial",
            patient_id=patient,
            row=f"{REFERENCE}:{line}",
            extra={"rt_pcr": int(covid), "severe": int(severe)},
        )
    missing = sorted(set(rows) - seen, key=int)
    if missing and any(_VOLUME.match(n) for n in ctx.files):
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        ctx.report(f"{len(missing)} reference rows have no volume here (PatientID {shown})", path=REFERENCE)
