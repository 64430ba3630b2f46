"""MIDRC-RICORD-1c (TCIA): 1,000 COVID-positive chest radiographs of 361 patients, DICOM.

TCIA's download layout (:mod:`covid19_images.sources.layouts.tcia`) is
``[manifest-<n>/]MIDRC-RICORD-1C/MIDRC-RICORD-1C-<MRN>/<study folder>/<series folder>/<n>-<m>.dcm``
(or a fetch's ``<PatientID>/<StudyUID>/<SeriesUID>/``): the patient folder carries TCIA's anonymised MRN
(``419639-000025``, ``SITE2-000105``, ``440808-...``), the study folder ends with the last five
characters of the StudyInstanceUID (which contain a dot for site 440808: ``8.458``). Every
study is COVID-19 positive (RT-PCR), so the label is ``covid-19``; the readers' study labels
(MD.ai export ``*_annotations_labelgroup_all_*.json``) are annotations (``annotations.py``).

Identities: ``extra.study_uid`` is RICORD's StudyInstanceUID (what MD.ai, SIIM-FISABIO-RSNA
and COVIDx key on) and the patient is the MRN. COVIDx names an image
``MIDRC-RICORD-1C-<MRN>-<last 5 of the study UID>-<i>.png``, ``i`` its position among the
study's DICOMs in path order (COVID-Net's ``create_ricord_dataset``): ``extra.covidx_name``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_sex, harmonise_view, parse_age
from covid19_images.sources.dicom_header import read_header, text
from covid19_images.sources.layouts.tcia import series_dicoms
from covid19_images.sources.parsing import SourceContext

PATIENT_PREFIX = "MIDRC-RICORD-1C-"
_PATIENT = re.compile(r"^MIDRC-RICORD-1C-(?P<mrn>[A-Za-z0-9]+-\d+)$", re.IGNORECASE)
FINDING = "COVID-19"


def studies(ctx: SourceContext) -> dict[tuple[str, str], list[str]]:
    """(MRN, study folder) -> the study's DICOM paths in path order (the order COVIDx numbers them in)."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for relative, patient, _study, _series in series_dicoms(ctx, _PATIENT, "MIDRC-RICORD-1C-<MRN>/<study>/<series>/"):
        found[(patient.group("mrn"), relative.rsplit("/", 2)[0])].append(relative)
    return {key: sorted(paths) for key, paths in sorted(found.items())}


def parse(ctx: SourceContext) -> Iterator[Entry]:
    for (mrn, study), paths in studies(ctx).items():
        for position, relative in enumerate(paths):
            ds = read_header(ctx, relative)
            if ds is None:
                continue
            uid = text(ds, "StudyInstanceUID")
            tail = uid[-5:] if uid else study.rsplit("-", 1)[-1]
            if uid and not study.endswith(tail):
                ctx.report(
                    f"study folder does not end with its StudyInstanceUID's last 5 characters {tail!r}", path=relative
                )
            modality = text(ds, "Modality").upper()
            if modality not in ("CR", "DX", ""):
                ctx.report(f"DICOM modality {modality!r} is not a radiograph; skipped", path=relative)
                continue
            label, detail = ctx.label(FINDING, relative, "")
            yield Entry(
                path=relative,
                modality="xray",
                finding=FINDING,
                label=label,
                label_detail=detail,
                view=harmonise_view(text(ds, "ViewPosition")),
                patient_id=mrn,
                age=parse_age(text(ds, "PatientAge")),
                sex=harmonise_sex(text(ds, "PatientSex")),
                extra={"study_uid": uid, "covidx_name": f"{PATIENT_PREFIX}{mrn}-{tail}-{position}.png"},
            )
