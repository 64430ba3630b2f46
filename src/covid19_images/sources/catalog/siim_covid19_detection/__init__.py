"""SIIM-FISABIO-RSNA COVID-19 Detection (Kaggle competition ``siim-covid19-detection``): DICOM + two CSVs.

Written against the format of the real files (read in ``nvnnghia/siim2021`` ``pipeline1/data/``,
not copied: competition terms; ``../shared/upstream-portal/siim-fisabio-rsna-covid19-detection/
SOURCE.yaml`` describes it):

* ``train/<study>/<series>/<image id>.dcm`` (the folder names and CSV ids are 12-hex digests of
  the UIDs; the study is read from the folder, as the CSVs name it), ``test/`` alike without labels;
* ``train_study_level.csv``: ``id`` = ``<study>_study`` and four one-hot columns
  ``Negative for Pneumonia``, ``Typical Appearance``, ``Indeterminate Appearance``,
  ``Atypical Appearance`` -> ``extra.study_label`` here, ``finding`` annotations in
  ``annotations.py``; a row with no or several 1s is reported;
* ``train_image_level.csv``: ``id`` = ``<image>_image``, ``boxes`` (single-quoted Python dicts in a
  quoted field, empty when none), ``label`` (``opacity 1 x0 y0 x1 y1`` per box or ``none 1 0 0 1
  1``), ``StudyInstanceUID`` without the suffix -> boxes in ``annotations.py``.

Label: every SIIM study comes from a COVID-19-positive collection (MIDRC-RICORD-1c and
BIMCV-COVID19+; RSNA's challenge description), so the finding is ``COVID-19`` as for RICORD-1c,
whose pictures SIIM re-annotated; the appearance class is the radiologists' read, not the
diagnosis. Test images are ``unknown``. The patient is the DICOM PatientID (SIIM's hash),
pseudonymised. SIIM publishes no link to the RICORD or BIMCV originals (its UIDs are new), so
the identity of a SIIM picture and its original is found by the perceptual duplicate search,
which puts both in one duplicate group and so joins the SIIM patient with the RICORD/BIMCV
patient in one split group: no picture and no patient crosses splits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.pseudonyms import pseudonym
from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_sex, harmonise_view, parse_age
from covid19_images.sources.dicom_header import HEADER_TAGS, read_header, text
from covid19_images.sources.parsing import SourceContext, column, iter_rows

STUDIES = "train_study_level.csv"
IMAGES = "train_image_level.csv"
STUDY_COLUMNS = ("Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance")
FINDING = "COVID-19"
SPLIT_FOLDERS = (("train", "train"), ("test", "test"))


def study_labels(ctx: SourceContext) -> dict[str, tuple[str, str]]:
    """StudyInstanceUID -> (the one study column set to 1, its row); bad rows reported."""
    found: dict[str, tuple[str, str]] = {}
    if not ctx.exists(STUDIES):
        ctx.report(f"no {STUDIES}; training images get no study label", path=STUDIES, level="error")
        return found
    frame = ctx.read_csv(STUDIES)
    for row in iter_rows(frame) if frame is not None else ():
        ident = column(row, "id")
        if not ident.endswith("_study"):
            ctx.report(f"id {ident!r} is not <study>_study; skipped", path=STUDIES, row=row["_row"])
            continue
        set_to_one = [name for name in STUDY_COLUMNS if column(row, name) == "1"]
        if len(set_to_one) != 1:
            ctx.report(
                f"{len(set_to_one)} study labels set to 1 (one expected); skipped", path=STUDIES, row=row["_row"]
            )
            continue
        found[ident.removesuffix("_study")] = (set_to_one[0], row["_row"])
    return found


def image_files(ctx: SourceContext, folder: str) -> dict[str, str]:
    """image id (file stem) -> path, for ``<folder>/<study>/<series>/<image>.dcm``."""
    found = {}
    for relative in ctx.files_under(folder):
        parts = PurePosixPath(relative).parts
        if relative.lower().endswith(".dcm") and len(parts) == 4:
            found[PurePosixPath(relative).stem] = relative
        elif relative.lower().endswith(".dcm"):
            ctx.report(f"DICOM outside {folder}/<study>/<series>/; not indexed", path=relative)
    return found


def parse(ctx: SourceContext) -> Iterator[Entry]:
    labels = study_labels(ctx)
    for folder, split in SPLIT_FOLDERS:
        for _image, relative in sorted(image_files(ctx, folder).items()):
            study = PurePosixPath(relative).parts[1]
            ds = read_header(ctx, relative, (*HEADER_TAGS, "PatientID"))
            if ds is None:
                continue
            extra: dict = {"study_uid": study}
            finding, where = "", ""
            if split == "train":
                appearance, where = labels.get(study, ("", ""))
                if appearance:
                    extra["study_label"] = appearance
                else:
                    ctx.report(f"study {study} has no row in {STUDIES}", path=relative)
                finding = FINDING
            label, detail = ctx.label(finding, relative, where) if finding else ("unknown", "")
            patient = text(ds, "PatientID")
            yield Entry(
                path=relative,
                modality="xray",
                finding=finding,
                label=label,
                label_detail=detail,
                view=harmonise_view(text(ds, "ViewPosition")),
                patient_id=pseudonym(patient, ctx.name) if patient else "",
                age=parse_age(text(ds, "PatientAge")),
                sex=harmonise_sex(text(ds, "PatientSex")),
                official_split=split,
                row=where,
                extra=extra,
            )
