"""Miniatures of the annotated portal sources of issue 22 (X-ray half): COVID-QU-Ex and SIIM-FISABIO-RSNA.

Neither set publishes metadata that may be copied here (COVID-QU-Ex has none public; SIIM's CSVs
fall under the competition's data terms and BIMCV's agreement), so both miniatures are their
documented layouts with synthetic rows in the real formats (SIIM's single-quoted box dicts inside a
quoted CSV field, ``opacity 1 x0 y0 x1 y1`` label groups, ``none 1 0 0 1 1``, 12-hex ids with
``_study``/``_image`` suffixes; COVID-QU-Ex's two sets and three mask folders) and synthetic
pictures, each listed in ``SYNTHETIC.md``. One SIIM image re-encodes the pixels of a RICORD-1c
miniature image, as SIIM re-annotated RICORD's pictures, so the duplicate search and the
``report`` overlap table have a real cross-source copy to find. Deterministic.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pydicom
from miniature_folder import CATALOG
from miniature_media import seed_of, synthetic_grey
from miniature_portal import Folder, dicom
from PIL import Image

WHY = "no image of this portal dataset may be embedded (terms) or none was obtained"
WHY_ROWS = "the real metadata may not be copied (terms) or is not public; synthetic rows in the real format"


def _png(grey: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(grey).save(out, "PNG", optimize=True)
    return out.getvalue()


def lung_mask(side: int, seed: int) -> np.ndarray:
    """Two lungs of different size and height (not mirror-symmetric, so a flip moves the mask)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    right = ((x - 0.3) / 0.14) ** 2 + ((y - 0.5) / 0.3) ** 2 < 1
    left = ((x - 0.7 - 0.03 * rng.random()) / 0.12) ** 2 + ((y - 0.45) / 0.26) ** 2 < 1
    return np.where(right | left, 255, 0).astype(np.uint8)


def infection_mask(side: int) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side] / side
    return np.where(((x - 0.28) / 0.08) ** 2 + ((y - 0.6) / 0.1) ** 2 < 1, 255, 0).astype(np.uint8)


# --- COVID-QU-Ex --------------------------------------------------------------------------------

QU_SIDE = 32
LUNG_SET = "Lung Segmentation Data/Lung Segmentation Data"
INFECTION_SET = "Infection Segmentation Data/Infection Segmentation Data"
#: (set, split, class, file name, infection mask: None none, True drawn, False empty)
QU_PICTURES = (
    (LUNG_SET, "Train", "COVID-19", "covid_1.png", None),
    (LUNG_SET, "Train", "Non-COVID", "non_COVID (1).png", None),
    (LUNG_SET, "Val", "Normal", "Normal (1).png", None),
    (LUNG_SET, "Test", "COVID-19", "covid_2.png", None),
    (INFECTION_SET, "Train", "COVID-19", "covid_1.png", True),
    (INFECTION_SET, "Test", "Normal", "Normal (2).png", False),
)


def build_covid_qu_ex() -> None:
    mini = Folder("covid_qu_ex")
    for subset, split, klass, name, infection in QU_PICTURES:
        base = f"{subset}/{split}/{klass}"
        seed = seed_of(f"covid-qu-ex/{klass}/{name}")  # the same picture in both sets (the real sets share it)
        mini.write(f"{base}/images/{name}", _png(synthetic_grey("xray", QU_SIDE, QU_SIDE, seed)), WHY)
        mini.write(f"{base}/lung masks/{name}", _png(lung_mask(QU_SIDE, seed)), WHY)
        if infection is not None:
            drawn = infection_mask(QU_SIDE) if infection else np.zeros((QU_SIDE, QU_SIDE), np.uint8)
            mini.write(f"{base}/infection masks/{name}", _png(drawn), WHY)
    mini.finish(
        "Invented 32x32 PNGs (the real ones are 256x256) and 0/255 masks in the layout users' loaders read "
        "(torch-em covid_qu_ex.py); file names follow third-party notes [unverified]. The Infection set's "
        "image is the Lung set's picture, as in the real release."
    )


# --- SIIM-FISABIO-RSNA --------------------------------------------------------------------------

RICORD_STUDY = "MIDRC-RICORD-1C/MIDRC-RICORD-1C-419639-000025/01-03-1901-NA-XR CHEST AP PORTABLE-50888"
RICORD_TWIN = f"{RICORD_STUDY}/1002.000000-NA-10014/1-1.dcm"
SIIM_STUDY_COLUMNS = ("Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance")
#: study -> (class column, [(image boxes as (x, y, w, h))], patient); pictures are 48 wide, 40 high
SIIM_STUDIES = {
    "typical": ("Typical Appearance", [[(6.21875, 8.5, 12.40625, 20.125), (28.75, 7.0, 11.5, 22.25)]], "p1"),
    "negative": ("Negative for Pneumonia", [[]], "p3"),  # the patient of the RICORD copy: a patient overlap
    "indeterminate": ("Indeterminate Appearance", [[(30, 12.33331, 9.00012, 10)], []], "val"),
    "atypical": ("Atypical Appearance", [[(40.5, 20.25, 14.0, 16.5)]], "p3"),  # RICORD's picture: 64x64
}


def hex_id(text: str) -> str:
    """A SIIM-style 12-hex id (SIIM hashed every UID), stable per text."""
    return hashlib.sha256(f"siim/{text}".encode()).hexdigest()[:12]


def uid(hex_name: str) -> str:
    """A DICOM UID for a 12-hex id (the folders and CSVs carry the 12-hex form)."""
    return f"1.2.826.0.1.3680043.8.498.{int(hex_name, 16)}"


def number(value: float) -> str:
    """A coordinate as SIIM writes it: ``2729`` for a whole number, else Python's repr (``1133.3231799999999``)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def box_field(boxes: list[tuple[float, float, float, float]]) -> str:
    """The ``boxes`` column: a Python-dict list with single quotes, inside a quoted CSV field."""
    if not boxes:
        return ""
    items = ", ".join(
        f"{{'x': {number(x)}, 'y': {number(y)}, 'width': {number(w)}, 'height': {number(h)}}}" for x, y, w, h in boxes
    )
    return f'"[{items}]"'


def label_field(boxes: list[tuple[float, float, float, float]]) -> str:
    """The ``label`` column: ``opacity 1 x0 y0 x1 y1`` per box (float noise as in the real file), or ``none``."""
    if not boxes:
        return "none 1 0 0 1 1"
    return " ".join(f"opacity 1 {number(x)} {number(y)} {number(x + w)} {number(y + h)}" for x, y, w, h in boxes)


def _siim_dicom(relative: str, header: dict, pixels: np.ndarray | None = None) -> bytes:
    if pixels is None:
        return dicom(relative, {**header, "Rows": 40}, jpeg=False)
    data = pydicom.dcmread(io.BytesIO(dicom(relative, header, jpeg=False)))
    data.Rows, data.Columns = pixels.shape
    data.PixelData = pixels.astype(np.uint8).tobytes()
    out = io.BytesIO()
    data.save_as(out, enforce_file_format=True)
    return out.getvalue()


def patient_in(split: str) -> str:
    """A patient label whose SIIM patient falls in ``split`` (splits hash the patient): fastai needs a val item."""
    from covid19_images.core.pseudonyms import pseudonym
    from covid19_images.manifest.splits import split_for

    source = "siim-covid19-detection"
    return next(
        f"p{n}" for n in range(4, 400) if split_for(f"{source}:{pseudonym(hex_id(f'patient/p{n}'), source)}") == split
    )


def build_siim() -> None:
    mini = Folder("siim_covid19_detection")
    study_rows, image_rows = [], []
    ricord = pydicom.dcmread(CATALOG / "midrc_ricord_1c" / "miniature" / RICORD_TWIN).pixel_array
    for name, (column, images, patient) in SIIM_STUDIES.items():
        patient = patient_in(patient) if patient in ("train", "val", "test") else patient
        study, series = hex_id(f"study/{name}"), hex_id(f"series/{name}")
        flags = ",".join("1" if c == column else "0" for c in SIIM_STUDY_COLUMNS)
        study_rows.append(f"{study}_study,{flags}\n")
        for number, boxes in enumerate(images):
            image = hex_id(f"image/{name}/{number}")
            image_rows.append(f"{image}_image,{box_field(boxes)},{label_field(boxes)},{study}\n")
            relative = f"train/{study}/{series}/{image}.dcm"
            header = {
                "PatientID": hex_id(f"patient/{patient}"),
                "StudyInstanceUID": uid(study),
                "SeriesInstanceUID": uid(series),
                "SOPInstanceUID": uid(image),
                "Modality": ("CR", "DX")[number % 2],
                "PatientSex": "M" if patient != "p3" else "F",
                "BodyPartExamined": "CHEST",
            }
            twin = ricord if name == "atypical" else None
            why = (
                "RICORD-1c miniature's picture re-encoded (SIIM re-annotated RICORD images)"
                if twin is not None
                else WHY
            )
            data = _siim_dicom(relative, header, twin) if twin is not None else _siim_wide(relative, header)
            mini.write(relative, data, why)
    absent = hex_id("image/absent")
    image_rows.append(f"{absent}_image,,none 1 0 0 1 1,{hex_id('study/absent')}\n")  # a partial download
    mini.write("train_study_level.csv", ("id," + ",".join(SIIM_STUDY_COLUMNS) + "\n" + "".join(study_rows)).encode(),
               WHY_ROWS)  # fmt: skip
    mini.write("train_image_level.csv", ("id,boxes,label,StudyInstanceUID\n" + "".join(image_rows)).encode(), WHY_ROWS)
    test_study, test_series, test_image = hex_id("study/test"), hex_id("series/test"), hex_id("image/test")
    header = {
        "PatientID": hex_id("patient/p9"),
        "StudyInstanceUID": uid(test_study),
        "SeriesInstanceUID": uid(test_series),
        "Modality": "DX",
        "PatientSex": "F",
    }
    relative = f"test/{test_study}/{test_series}/{test_image}.dcm"
    mini.write(relative, _siim_wide(relative, header), WHY)
    submission = f"id,PredictionString\n{test_study}_study,negative 1 0 0 1 1\n{test_image}_image,none 1 0 0 1 1\n"
    mini.write("sample_submission.csv", submission.encode(), WHY_ROWS)
    mini.finish(
        "Invented 48x40 DICOMs (uncompressed; SIIM's hold 2,000-4,000 pixel sides) in SIIM's "
        "`train|test/<study>/<series>/<image>.dcm` layout, with 12-hex ids; CSV rows invented in the real formats."
    )


def _siim_wide(relative: str, header: dict) -> bytes:
    """A 48x40 (wide) synthetic radiograph, so that box scaling in x and y differ."""
    grey = synthetic_grey("xray", 48, 40, seed_of(relative))
    return _siim_dicom(relative, header, grey)


# --- MIDRC-RICORD-1a / 1b (TCIA CT) -------------------------------------------------------------

CT_SIDE = 16
RICORD_1A_EXPORT = "MIDRC-RICORD-1a_annotations_labelgroup_all_2020-Dec-8.json"


def ct_slice(relative: str, header: dict, position: float, seed: int) -> bytes:
    """One 16x16 axial CT slice (int16, RescaleIntercept -1024, as RICORD's), uncompressed."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    grey = synthetic_grey("ct", CT_SIDE, CT_SIDE, seed).astype(np.int16) * 6
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    meta.MediaStorageSOPInstanceUID = header["SOPInstanceUID"]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    ds.Modality, ds.ImageType = "CT", ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-100.0, -100.0, position]
    ds.PixelSpacing, ds.SliceThickness = [12.5, 12.5], 5.0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.Rows = ds.Columns = CT_SIDE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = grey.tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def ct_series(mini: Folder, collection: str, mrn: str, study: str, series: str, slices: int) -> list[tuple[str, str]]:
    """A Data Retriever series folder; returns (path, SOPInstanceUID) per slice, in file order."""
    subject = f"{collection}-{mrn}"
    study_uid, series_uid = uid(hex_id(f"{subject}/{study}")), uid(hex_id(f"{subject}/{study}/{series}"))
    folder = f"{collection}/{subject}/{study}-{study_uid[-5:]}/{series}-{series_uid[-5:]}"
    made = []
    for number in range(1, slices + 1):
        sop = uid(hex_id(f"{folder}/{number}"))
        header = {"PatientID": subject, "PatientName": subject, "StudyInstanceUID": study_uid,
                  "SeriesInstanceUID": series_uid, "SOPInstanceUID": sop, "SeriesNumber": 2, "InstanceNumber": number,
                  "PatientSex": "F", "PatientAge": "061Y", "BodyPartExamined": "CHEST"}  # fmt: skip
        relative = f"{folder}/1-{number:02d}.dcm"
        # file order is not slice order: the last file is the top slice
        position = -5.0 * ((number % slices) + 1)
        mini.write(relative, ct_slice(relative, header, position, seed_of(relative)), WHY)
        made.append((relative, sop))
    return made


def build_ricord_ct() -> None:
    one_a = Folder("midrc_ricord_1a")
    slices = ct_series(one_a, "MIDRC-RICORD-1A", "419639-000082", "01-01-1901-NA-CT CHEST WO CONTRAST", "2.000000-NA",
                       4)  # fmt: skip
    study_uid = pydicom.dcmread(one_a.root / slices[0][0], stop_before_pixels=True)
    groups = [
        {"id": "G_Tiger", "name": "Tiger", "labels": [
            {"id": "L_op_t", "name": "Infectious opacity", "scope": "INSTANCE", "type": "LOCAL",
             "annotationMode": "freeform"},
            {"id": "L_typ_t", "name": "Typical Appearance", "scope": "STUDY", "type": "GLOBAL"},
            {"id": "L_gga_t", "name": "GGO", "scope": "SERIES", "type": "GLOBAL"}]},
        {"id": "G_Lion", "name": "Lion", "labels": [
            {"id": "L_op_l", "name": "Infectious opacity", "scope": "INSTANCE", "type": "LOCAL",
             "annotationMode": "freeform"}]},
    ]  # fmt: skip
    uids = {"StudyInstanceUID": str(study_uid.StudyInstanceUID), "SeriesInstanceUID": str(study_uid.SeriesInstanceUID)}
    annotations = [
        {"id": "A_1", "labelId": "L_op_t", **uids, "SOPInstanceUID": slices[1][1],
         "data": {"vertices": [[3.5, 4.0], [9.0, 3.0], [10.5, 8.0], [5.0, 10.25]]}, "createdById": "U_T"},
        {"id": "A_2", "labelId": "L_op_l", **uids, "SOPInstanceUID": slices[1][1],
         "data": {"vertices": [[4.0, 4.0], [9.5, 4.0], [9.5, 9.0]]}, "createdById": "U_L"},
        {"id": "A_3", "labelId": "L_op_t", **uids, "SOPInstanceUID": slices[2][1],
         "data": {"vertices": [[2.0, 6.0], [7.0, 6.0], [7.0, 12.0], [2.0, 12.0]]}, "createdById": "U_T"},
        {"id": "A_4", "labelId": "L_typ_t", "StudyInstanceUID": uids["StudyInstanceUID"], "SeriesInstanceUID": None,
         "SOPInstanceUID": None, "data": None, "createdById": "U_T"},
        {"id": "A_5", "labelId": "L_gga_t", **uids, "SOPInstanceUID": None, "data": None, "createdById": "U_T"},
        {"id": "A_6", "labelId": "L_op_t", **uids, "SOPInstanceUID": "1.2.3.4.999",
         "data": {"vertices": [[1, 1], [3, 1], [3, 4]]},
         "createdById": "U_T"},  # a slice not in this download
    ]  # fmt: skip
    export = {"id": "P_1a", "name": "MIDRC-RICORD-1a", "labelGroups": groups,
              "datasets": [{"id": "D_1a", "studies": [{"StudyInstanceUID": uids["StudyInstanceUID"], "number": 1}],
                            "annotations": annotations}]}  # fmt: skip
    one_a.write(RICORD_1A_EXPORT, json.dumps(export, separators=(",", ":")).encode(),
                "MD.ai export in the 1c export's structure (the real 1a JSON is not public outside TCIA); "
                "freeform vertices as MD.ai writes local annotations")  # fmt: skip
    one_a.finish("Invented 16x16 CT slices (int16, RescaleIntercept -1024) in TCIA's Data Retriever layout.")
    one_b = Folder("midrc_ricord_1b")
    ct_series(one_b, "MIDRC-RICORD-1B", "419639-000301", "01-02-1901-NA-CT CHEST WO CONTRAST", "3.000000-NA", 3)
    one_b.finish("Invented 16x16 CT slices (int16, RescaleIntercept -1024) in TCIA's Data Retriever layout.")


def build_annotated_portal_miniatures() -> None:
    build_covid_qu_ex()
    build_siim()
    build_ricord_ct()


if __name__ == "__main__":
    build_annotated_portal_miniatures()
    print(Path(CATALOG / "covid_qu_ex" / "miniature"))
