"""COVID-19-NY-SBU (TCIA): chest X-rays and CTs of 1,384 COVID-19-positive Stony Brook patients.

TCIA's layouts (:mod:`covid19_images.sources.layouts.tcia`): the Data Retriever's
``[manifest-<n>/]COVID-19-NY-SBU/<pid>/<study folder>/<series folder>/<n>-<m>.dcm``, ``pid`` = ``A``
+ 6 digits, study folders ``MM-DD-YYYY-NA-<description>-<5 digits>`` (dates shifted to 1900-1901,
descriptions with spaces), series folders ``<number>.000000-<desc>-<5 digits>``; or a fetch's
``<pid>/<StudyInstanceUID>/<SeriesInstanceUID>/``, whose descriptive names come from the header.
Modality (CR/DX -> xray, CT -> ct) and view come from each header; other DICOM objects are
reported and skipped. Some studies are not chest studies (``FLAT PLATE OF
ABDOMEN``, ``CT ABD AND PELVIS``): ``extra.body_part`` says ``abdomen`` for them (COVIDx 9A
lists such X-rays as COVID-19 chest films; the flag lets a loader drop them).

The clinical table ``deidentified_overlap_tcia.csv.cleaned.csv_<date>.csv`` (CRLF, ``NA`` for
missing, booleans spelt ``TRUE/FALSE``, ``Yes/No`` and ``not documented``; ages only as
intervals such as ``(59,74]``) gives sex, the age interval, outcome, ICU and ventilation,
normalised into ``extra``; everyone is COVID-19 positive (``covid19_statuses``).

COVIDx names an X-ray ``<pid>-<study>-<series>-<file stem>.jpg`` with spaces as ``_``
(``extra.covidx_name``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_sex, harmonise_view
from covid19_images.sources.dicom_header import HEADER_TAGS, read_header, text
from covid19_images.sources.layouts.tcia import RETRIEVER_TAGS, retriever_folders, series_dicoms
from covid19_images.sources.parsing import SourceContext, column, iter_rows

_PATIENT = re.compile(r"^A\d{6}$")
_CLINICAL = re.compile(r"(^|/)deidentified_overlap_tcia[^/]*\.csv$")
MODALITIES = {"CR": "xray", "DX": "xray", "CT": "ct"}
_ABDOMEN = re.compile(r"\b(ABD|ABDOMEN|PELVIS|KUB)\b", re.IGNORECASE)
FINDING = "COVID-19"
#: mixed boolean spellings of the clinical table -> True/False (``NA``/``not documented`` -> absent)
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
#: clinical column -> extra key
CLINICAL = (
    ("last.status", "outcome"),
    ("age.splits", "age_range"),
    ("is_icu", "icu"),
    ("was_ventilated", "ventilated"),
)


def clinical_value(raw: str) -> str | bool | None:
    """``NA``/``not documented``/blank -> None; a boolean spelling -> bool; anything else as written."""
    value = raw.strip()
    if value.lower() in ("", "na", "n/a", "not documented"):
        return None
    return BOOLEANS.get(value.lower(), value)


def read_clinical(ctx: SourceContext) -> dict[str, dict[str, str]]:
    """pid -> its clinical row (the newest table if several)."""
    tables = sorted(f for f in ctx.files if _CLINICAL.search(f))
    if not tables:
        ctx.report("no clinical table deidentified_overlap_tcia*.csv; sex and outcome unknown")
        return {}
    frame = ctx.read_csv(tables[-1])
    rows = {}
    for row in iter_rows(frame) if frame is not None else ():
        pid = column(row, "to_patient_id")
        if not _PATIENT.match(pid):
            ctx.report(f"patient id {pid!r} is not A + 6 digits; row skipped", path=tables[-1], row=row["_row"])
            continue
        rows[pid] = row
    return rows


def parse(ctx: SourceContext) -> Iterator[Entry]:
    clinical = read_clinical(ctx)
    for relative, patient, study, series in series_dicoms(ctx, _PATIENT, "<pid>/<study>/<series>/"):
        pid = patient.group(0)
        ds = read_header(ctx, relative, HEADER_TAGS + RETRIEVER_TAGS)
        if ds is None:
            continue
        study, series = retriever_folders(ds, study, series)
        modality = MODALITIES.get(text(ds, "Modality").upper())
        if modality is None:
            ctx.report(f"DICOM modality {text(ds, 'Modality')!r} is not one we index; skipped", path=relative)
            continue
        row = clinical.get(pid)
        extra: dict = {"study": study}
        if _ABDOMEN.search(study) or _ABDOMEN.search(series):
            extra["body_part"] = "abdomen"
        if row is None:
            if clinical:
                ctx.report(f"patient {pid} has no clinical row", path=relative)
        else:
            extra.update({key: v for name, key in CLINICAL if (v := clinical_value(column(row, name))) is not None})
        if modality == "xray":
            stem = PurePosixPath(relative).stem
            extra["covidx_name"] = f"{pid}-{study}-{series}-{stem}.jpg".replace(" ", "_")
        label, detail = ctx.label(FINDING, relative, "")
        view = harmonise_view(text(ds, "ViewPosition")) if modality == "xray" else "axial"
        yield Entry(
            path=relative,
            modality=modality,
            finding=FINDING,
            label=label,
            label_detail=detail,
            view=view,
            patient_id=pid,
            sex=harmonise_sex(column(row, "gender_concept_name")) if row else "",
            row=row["_row"] if row else "",
            extra=extra,
        )
