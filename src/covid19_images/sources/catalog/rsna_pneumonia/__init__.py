"""RSNA Pneumonia Detection Challenge (Kaggle competition, stage 2): DICOM, labels and boxes.

Layout of the competition download: ``stage_2_train_labels.csv`` (``patientId,x,y,width,
height,Target``), ``stage_2_detailed_class_info.csv`` (``patientId,class``),
``stage_2_sample_submission.csv`` (the test ids, CRLF) and ``stage_2_{train,test}_images/
<patientId>.dcm``. Quirks handled:

* the labels file has **one row per box**: a patient with 3 boxes has 3 rows, and its class
  row is repeated 3 times; ``Target`` 0 rows have empty ``x..height``; coordinates are
  floats written ``264.0``. One image = one entry; boxes go to ``annotations.py``.
* ``class`` is one of ``Lung Opacity`` (pneumonia, as COVID-Net reads it),
  ``No Lung Opacity / Not Normal`` (other) and ``Normal``; the class rows of one patient must
  agree with each other and with ``Target`` (a disagreement is reported, the class kept).
* The header holds the view (``ViewPosition`` AP/PA), sex and a bare-number age (``58``);
  ``PatientID`` is the patientId itself (a random UUID, not identifying).
* The images come from NIH ChestX-ray14. RSNA publishes the link:
  ``pneumonia-challenge-dataset-mappings_2018.json`` (``subset_img_id`` = patientId,
  ``img_id`` = NIH file name), fetched beside the competition files. When it is there, each
  row records ``extra.same_as`` (the NIH image, which ``nih-chestxray14-sample`` may hold) and
  takes the NIH patient (``00000013`` of ``00000013_005.png``) as its patient, so one
  person's RSNA images never straddle splits; without it the patient is the patientId.
* Test images have no label (``unknown``), ``official_split`` test.
* COVIDx names an RSNA image ``<patientId>.png`` (``extra.covidx_name``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_sex, harmonise_view, parse_age
from covid19_images.sources.dicom_header import read_header, text
from covid19_images.sources.parsing import SourceContext, column, iter_rows

LABELS = "stage_2_train_labels.csv"
CLASSES = "stage_2_detailed_class_info.csv"
SUBMISSION = "stage_2_sample_submission.csv"
TRAIN_IMAGES = "stage_2_train_images"
TEST_IMAGES = "stage_2_test_images"
NIH_MAPPING = "pneumonia-challenge-dataset-mappings_2018.json"
NIH_SOURCE = "nih-chestxray14-sample"
#: the class each Target agrees with
TARGET_CLASS = {"1": {"Lung Opacity"}, "0": {"Normal", "No Lung Opacity / Not Normal"}}
MAX_MAPPING_BYTES = 64 * 1024 * 1024


def read_labels(ctx: SourceContext) -> dict[str, list[dict[str, str]]]:
    """patientId -> its rows of the labels file (one per box; one empty row for Target 0)."""
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    if not ctx.exists(LABELS):
        ctx.report(f"no {LABELS}; training images get no label", path=LABELS, level="error")
        return rows
    frame = ctx.read_csv(LABELS)
    for row in iter_rows(frame) if frame is not None else ():
        patient = column(row, "patientId")
        if not patient:
            ctx.report("row without patientId; skipped", path=LABELS, row=row["_row"])
            continue
        rows[patient].append(row)
    return rows


def read_classes(ctx: SourceContext) -> dict[str, tuple[str, str]]:
    """patientId -> (class, row); the repeated rows of one patient must agree."""
    classes: dict[str, tuple[str, str]] = {}
    if not ctx.exists(CLASSES):
        ctx.report(f"no {CLASSES}; classes come from Target alone", path=CLASSES)
        return classes
    frame = ctx.read_csv(CLASSES)
    for row in iter_rows(frame) if frame is not None else ():
        patient, value = column(row, "patientId"), column(row, "class")
        if patient in classes and classes[patient][0] != value:
            ctx.report(
                f"class {value!r} disagrees with {classes[patient][0]!r} of the same patient; first kept",
                path=CLASSES,
                row=row["_row"],
            )
            continue
        classes.setdefault(patient, (value, row["_row"]))
    return classes


def read_nih_mapping(ctx: SourceContext) -> dict[str, str]:
    """patientId -> NIH ChestX-ray14 file name, from RSNA's published mapping (empty when absent)."""
    if not ctx.exists(NIH_MAPPING):
        return {}
    path = ctx.directory / NIH_MAPPING
    try:
        if path.stat().st_size > MAX_MAPPING_BYTES:
            raise ValueError(f"{path.stat().st_size} bytes, more than a mapping of 30,000 ids can be")
        items = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(items, list):
            raise ValueError("not a JSON list")
    except (OSError, ValueError) as err:
        ctx.report(f"NIH mapping unusable ({err}); no NIH identities recorded", path=NIH_MAPPING, level="error")
        return {}
    mapping: dict[str, str] = {}
    for number, item in enumerate(items, start=1):
        subset = str(item.get("subset_img_id", "")).strip() if isinstance(item, dict) else ""
        nih = str(item.get("img_id", "")).strip() if isinstance(item, dict) else ""
        if not subset or not nih or "/" in nih or "\\" in nih:
            ctx.report(
                "item without subset_img_id/img_id; skipped", path=NIH_MAPPING, row=f"{NIH_MAPPING} item {number}"
            )
            continue
        mapping[subset] = nih if nih.lower().endswith(".png") else f"{nih}.png"
    return mapping


def _finding(
    ctx: SourceContext, patient: str, relative: str, rows: list[dict[str, str]], classes: dict[str, tuple[str, str]]
) -> tuple[str, str]:
    """(raw class, metadata row) of a training image; Target fills in when the class file lacks it."""
    targets = {column(r, "Target") for r in rows}
    where = rows[0]["_row"] if rows else ""
    if len(targets) > 1:
        ctx.report(f"Target differs between the rows of one patient {sorted(targets)}", path=LABELS, row=where)
    value, class_row = classes.get(patient, ("", ""))
    if not value:
        value = "Lung Opacity" if "1" in targets else ""
        if not value:
            ctx.report("no class row and no positive Target; label unknown", path=relative, row=where)
    else:
        for target in targets:
            if target in TARGET_CLASS and value not in TARGET_CLASS[target]:
                ctx.report(f"class {value!r} disagrees with Target {target}; class kept", path=CLASSES, row=class_row)
    return value, class_row or where


def parse(ctx: SourceContext) -> Iterator[Entry]:
    """One entry per DICOM under stage_2_train_images/ and stage_2_test_images/."""
    labels, classes, nih = read_labels(ctx), read_classes(ctx), read_nih_mapping(ctx)
    seen: set[str] = set()
    for folder, split in ((TRAIN_IMAGES, "train"), (TEST_IMAGES, "test")):
        for relative in ctx.files_under(folder):
            if not relative.lower().endswith(".dcm"):
                continue
            patient = PurePosixPath(relative).stem
            seen.add(patient)
            finding, where = ("", "")
            if split == "train":
                if patient not in labels and patient not in classes:
                    ctx.report(f"image has no row in {LABELS}; label unknown", path=relative)
                finding, where = _finding(ctx, patient, relative, labels.get(patient, []), classes)
            ds = read_header(ctx, relative)
            if ds is None:
                continue
            label, detail = ctx.label(finding, relative, where) if finding else ("unknown", "")
            extra: dict = {"covidx_name": f"{patient}.png"}
            if split == "train":
                extra["boxes"] = sum(column(r, "Target") == "1" for r in labels.get(patient, []))
            person = patient
            if patient in nih:
                extra["same_as"] = [f"{NIH_SOURCE}:{nih[patient]}"]
                person = f"nih-{nih[patient].split('_')[0]}"
            yield Entry(
                path=relative,
                modality="xray",
                finding=finding,
                label=label,
                label_detail=detail,
                view=harmonise_view(text(ds, "ViewPosition")),
                patient_id=person,
                age=parse_age(text(ds, "PatientAge")),
                sex=harmonise_sex(text(ds, "PatientSex")),
                official_split=split,
                row=where,
                extra=extra,
            )
    missing = sorted(set(labels) - seen)
    if missing:
        ctx.report(
            f"{len(missing)} patients of {LABELS} have no image in {TRAIN_IMAGES}/ (e.g. {', '.join(missing[:3])}); "
            "not indexed (a partial download, or a fetch limited to a selection)",
            path=TRAIN_IMAGES,
        )
