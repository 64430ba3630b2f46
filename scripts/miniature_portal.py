"""Miniatures of the portal sources, from the real metadata in ``../shared/upstream-portal``.

Each miniature is the portal download's layout with real metadata rows chosen so that every
label, view and quirk the parser handles occurs (RSNA's one row per box and Target 0 rows,
the Radiography DB's ``NORMAL-1`` vs ``Normal-1``, RICORD's several readers per study, SBU's
``NA`` and mixed booleans ...), and images COVIDx 9A lists, so the ``covidx:9A`` scheme has
portal images to serve. Every picture is synthetic (none of these licences allows embedding,
or no picture was obtained): tiny JPEG-baseline DICOMs with the real header structure, small
PNGs. Files with no real counterpart (BIMCV's tables, CXR-4's label files, RSNA's NIH mapping)
are synthetic too, in the documented format, and listed in each ``SYNTHETIC.md``.

``build_portal_miniatures(portal)`` returns the COVIDx file names the miniatures hold, which
``build_covidx`` keeps in the COVIDx label files' miniature. Deterministic: same bytes on re-runs.
"""

from __future__ import annotations

import datetime
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pydicom
from miniature_folder import ANNOTATION_TEXTS, CATALOG, fresh
from miniature_media import seed_of, synthetic_grey
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

SIDE = 64
FIXED_TIME = datetime.datetime(2021, 3, 6)  # the release's workbooks' own date
COVIDX_LABELS = "lindawangg-COVID-Net/labels"
WHY_PORTAL = "no image of this portal dataset may be embedded (terms) or none was obtained"


class Folder:
    """A miniature folder being written, with its ``SYNTHETIC.md`` list."""

    def __init__(self, package: str) -> None:
        fresh(package)
        self.root = CATALOG / package / "miniature"
        self.synthetic: list[tuple[str, str]] = []

    def write(self, relative: str, data: bytes, why: str = "") -> None:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if why:
            self.synthetic.append((relative, why))

    def finish(self, intro: str) -> None:
        rows = "\n".join(f"| `{path}` | {why} |" for path, why in sorted(self.synthetic))
        text = (
            "# Synthetic files in this miniature\n\n"
            f"{intro}\nNot medical images: never train or evaluate on them.\n\n| file | why synthetic |\n|---|---|\n"
        )
        (self.root / "SYNTHETIC.md").write_text(text + rows + "\n")


def png(relative: str, kind: str = "xray", mask: bool = False) -> bytes:
    """A synthetic picture in the format its name says (PNG, or baseline JPEG for ``.jpg``)."""
    grey = synthetic_grey(kind, SIDE, SIDE, seed_of(relative))
    if mask:
        grey = np.where(grey > 128, 255, 0).astype(np.uint8)
    out = io.BytesIO()
    if relative.lower().endswith((".jpg", ".jpeg")):
        Image.fromarray(grey).save(out, "JPEG", quality=85)
    else:
        Image.fromarray(grey).save(out, "PNG", optimize=True)
    return out.getvalue()


def dicom(relative: str, header: dict, *, jpeg: bool = True, kind: str = "xray") -> bytes:
    """A tiny DICOM with ``header`` (keywords) around synthetic pixels; JPEG baseline like RSNA's files."""
    grey = synthetic_grey(kind, SIDE, SIDE, seed_of(relative))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture, as RSNA's
    meta.MediaStorageSOPInstanceUID = header.get("SOPInstanceUID") or generate_uid(entropy_srcs=[relative])
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    ds.Rows = ds.Columns = SIDE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if jpeg:
        out = io.BytesIO()
        Image.fromarray(grey).save(out, "JPEG", quality=85)
        ds.PixelData = encapsulate([out.getvalue()])
        ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = grey.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def covidx_lines(portal: Path, source: str) -> dict[str, list[str]]:
    """``split -> lines`` of COVIDx 9A for one COVIDx source (``rsna`` includes the ``rnsa`` typo)."""
    labels = portal.parent / "upstream" / COVIDX_LABELS
    found: dict[str, list[str]] = {}
    for split in ("train", "test"):
        lines = (labels / f"{split}_COVIDx9A.txt").read_text().splitlines()
        names = {source, "rnsa"} if source == "rsna" else {source}
        found[split] = [line for line in lines if line.split() and line.split()[-1] in names]
    return found


def fixed_zip(data: bytes) -> bytes:
    """An xlsx rewritten with fixed member dates and document times: the same bytes on every build."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            payload = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
                payload = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + stamp, payload)
            target.writestr(
                zipfile.ZipInfo(info.filename, date_time=(2021, 3, 6, 0, 0, 0)), payload, zipfile.ZIP_DEFLATED
            )
    return out.getvalue()


# --- RSNA ------------------------------------------------------------------------------------


def build_rsna(portal: Path) -> set[str]:
    sample = portal / "rsna-pneumonia-detection-challenge"
    mini = Folder("rsna_pneumonia")
    labels = (sample / "stage_2_train_labels.csv").read_bytes().splitlines(keepends=True)
    classes = (sample / "stage_2_detailed_class_info.csv").read_bytes().splitlines(keepends=True)
    rows: dict[str, list[int]] = {}
    for index, line in enumerate(labels[1:], start=1):
        rows.setdefault(line.split(b",")[0].decode(), []).append(index)
    klass = {line.split(b",")[0].decode(): line.split(b",", 1)[1].strip().decode() for line in classes[1:]}
    chosen: list[str] = []

    def take(patient: str) -> None:
        if patient in rows and patient not in chosen:
            chosen.append(patient)

    for wanted in ("Normal", "No Lung Opacity / Not Normal"):
        take(next(p for p in rows if klass[p] == wanted))
    for boxes in (1, 2, 3, 4):
        take(next(p for p, at in rows.items() if len(at) == boxes and klass[p] == "Lung Opacity"))
    take("00f08de1-517e-4652-a04f-d1dc9ee48593")  # the header dump's patient
    listed = covidx_lines(portal, "rsna")
    for split in ("train", "test"):
        for cls in ("normal", "pneumonia"):
            take(next(line.split()[0] for line in listed[split] if line.split()[0] in rows and line.split()[2] == cls))
    take(next(line.split()[0] for line in listed["train"] if line.endswith("rnsa") and line.split()[0] in rows))
    absent = next(p for p in rows if p not in chosen)  # a row whose image a partial download lacks
    keep = sorted(i for p in [*chosen, absent] for i in rows[p])
    mini.write("stage_2_train_labels.csv", b"".join([labels[0], *(labels[i] for i in keep)]))
    mini.write("stage_2_detailed_class_info.csv", b"".join([classes[0], *(classes[i] for i in keep)]))
    submission = (sample / "stage_2_sample_submission.csv").read_bytes().splitlines(keepends=True)
    mini.write("stage_2_sample_submission.csv", b"".join(submission[:3]))
    tests = [line.split(b",")[0].decode() for line in submission[1:3]]
    for number, patient in enumerate(chosen + tests):
        folder = "stage_2_train_images" if patient in chosen else "stage_2_test_images"
        view = ("AP", "PA")[number % 2]
        header = {
            "PatientName": patient,
            "PatientID": patient,
            "PatientSex": ("M", "F")[number % 2],
            "PatientAge": str(30 + 3 * number),
            "Modality": "CR",
            "ViewPosition": view,
            "SeriesDescription": f"view: {view}",
            "BodyPartExamined": "CHEST",
            "StudyDate": "19010101",
            "ConversionType": "WSD",
            "PixelSpacing": [0.139 * 16, 0.139 * 16],
        }
        relative = f"{folder}/{patient}.dcm"
        mini.write(relative, dicom(relative, header), WHY_PORTAL)
    nih = [{"img_id": "00001998_000.png", "subset_img_id": chosen[0], "dataset": "train"}]
    mini.write(
        "pneumonia-challenge-dataset-mappings_2018.json",
        json.dumps(nih).encode(),
        "RSNA's NIH mapping in its documented fields (subset_img_id, img_id); the pair is invented so the "
        "identity link reaches an image of the NIH miniature",
    )
    mini.finish("Invented DICOMs (JPEG baseline, 8-bit, RSNA's header fields) named after real patientIds.")
    return {f"{p}.png" for p in chosen}


# --- COVID-19 Radiography Database -------------------------------------------------------------

RADIOGRAPHY_PICKS = {
    "COVID": (1, 2, 150, 600, 960, 1000, 2000),
    "Normal": (1, 2, 9000),
    "Lung_Opacity": (1, 2),
    "Viral Pneumonia": (1, 2),
}


def build_radiography(portal: Path) -> set[str]:
    import openpyxl

    sample = portal / "covid19-radiography-database" / "COVID-19_Radiography_Dataset"
    mini = Folder("covid19_radiography_db")
    base = "COVID-19_Radiography_Dataset"
    mini.write(f"{base}/README.md.txt", (sample / "README.md.txt").read_bytes())
    held: set[str] = set()
    for folder, numbers in RADIOGRAPHY_PICKS.items():
        source = openpyxl.load_workbook(sample / f"{folder}.metadata.xlsx", read_only=True)
        all_rows = list(source.worksheets[0].iter_rows(values_only=True))
        source.close()
        book = openpyxl.Workbook()
        book.properties.created = book.properties.modified = FIXED_TIME  # the same bytes on every build
        sheet = book.active
        sheet.title = "Sheet1"
        sheet.append(list(all_rows[0]))
        for number in (*numbers, max(numbers) + 1):  # the last row's image is left out: a partial download
            sheet.append(list(all_rows[number]))
        out = io.BytesIO()
        book.save(out)
        mini.write(f"{base}/{folder}.metadata.xlsx", fixed_zip(out.getvalue()))
        for position, number in enumerate(numbers):
            relative = f"{base}/{folder}/images/{folder}-{number}.png"
            mini.write(relative, png(relative), WHY_PORTAL)
            if position < 2:
                mask = f"{base}/{folder}/masks/{folder}-{number}.png"
                mini.write(mask, png(mask, mask=True), WHY_PORTAL)
            if folder == "COVID":
                held.add(f"COVID({number}).png")
    unlisted = f"{base}/Viral Pneumonia/images/Viral Pneumonia-99999.png"  # an image no row names
    mini.write(unlisted, png(unlisted), WHY_PORTAL)
    mini.finish(
        "Invented 64x64 PNGs and lung masks with the release's names. The workbooks are real rows re-saved with "
        "openpyxl (sheet `Sheet1`, header unchanged), trimmed to the pictures here plus one row without a picture."
    )
    return held


# --- MIDRC-RICORD-1c ---------------------------------------------------------------------------

RICORD_STUDIES = (  # (MRN, study UID tail, images): COVIDx 9A test images, site 440808's dotted tail, a 2-image study
    ("419639-003251", "46647", 1),
    ("SITE2-000265", "99793", 2),
    ("419639-000025", "50888", 1),
)


def build_ricord(portal: Path) -> set[str]:
    sample = portal / "midrc-ricord-1c"
    mini = Folder("midrc_ricord_1c")
    mapping = json.loads(
        (sample / "COVID-Net/create_ricord_dataset/ricord_patientid_to_studyid_mapping.json").read_text()
    )
    export_name = "1c_mdai_rsna_project_MwBeK3Nr_annotations_labelgroup_all_2021-01-08-164102.json"
    export = json.loads((sample / export_name).read_text())
    annotated: dict[str, set[str]] = {}
    for item in export["datasets"][0]["annotations"]:
        annotated.setdefault(item["StudyInstanceUID"], set()).add(item["createdById"])
    studies = list(RICORD_STUDIES)
    dotted = next((m, u[-5:]) for m, uids in mapping.items() for u in uids if m.startswith("440808") and "." in u[-5:])
    studies.append((*dotted, 1))
    many = next((m, u[-5:]) for m, uids in mapping.items() for u in uids if len(annotated.get(u, ())) >= 4)
    studies.append((*many, 1))
    uids = {}
    held: set[str] = set()
    for number, (mrn, tail, count) in enumerate(studies):
        uid = next(u for u in mapping[mrn] if u.endswith(tail))
        uids[uid] = mrn
        study = f"MIDRC-RICORD-1C/MIDRC-RICORD-1C-{mrn}/01-0{1 + number}-1901-NA-XR CHEST AP PORTABLE-{tail}"
        for index in range(count):
            relative = f"{study}/{1000 + number}.000000-NA-{10000 + number * 7:05d}/1-{index + 1}.dcm"
            header = {
                "PatientID": f"MIDRC-RICORD-1C-{mrn}",
                "PatientSex": ("M", "F")[number % 2],
                "PatientAge": f"0{40 + number}Y",
                "Modality": ("CR", "DX")[number % 2],
                "ViewPosition": ("AP", "PA")[index % 2],
                "StudyInstanceUID": uid,
                "SeriesInstanceUID": f"{uid[:60]}.{index + 1}",
            }
            mini.write(relative, dicom(relative, header, jpeg=False), WHY_PORTAL)
            held.add(f"MIDRC-RICORD-1C-{mrn}-{tail}-{index}.png")
    dataset = export["datasets"][0]
    trimmed = {
        **export,
        "datasets": [
            {
                **dataset,
                "studies": [s for s in dataset["studies"] if s["StudyInstanceUID"] in uids],
                "annotations": [a for a in dataset["annotations"] if a["StudyInstanceUID"] in uids],
            }
        ],
    }
    mini.write(export_name, json.dumps(trimmed, separators=(",", ":")).encode())
    ANNOTATION_TEXTS.append(
        (
            "midrc_ricord_1c",
            export_name,
            "CC BY-NC 4.0 (TCIA; as widely cited, unverified)",
            f"the real MD.ai export trimmed to the {len(uids)} studies held (all label groups, their "
            "annotations unchanged), re-serialised minified; redistributed non-commercially. Tsai et al., "
            "RICORD, Radiology 299(1):E204-E213 (2021), doi:10.7937/91ah-v663",
        )
    )
    mini.finish(
        "Invented DICOMs in TCIA's download layout with the real StudyInstanceUIDs and anonymised MRNs of the "
        "studies kept; the MD.ai export is real, trimmed to those studies."
    )
    return held


# --- COVID-19-NY-SBU ---------------------------------------------------------------------------

_SBU_NAME = re.compile(
    r"^(?P<pid>A\d{6})-(?P<study>\d\d-\d\d-\d{4}-NA-.+-\d{5})-(?P<series>\d+\.\d+-.+-\d{5})-(?P<file>\d+-\d+)\.jpg$"
)


def sbu_series_header(pid: str, study: str, series: str) -> dict:
    """The header tags the Data Retriever names a series' folders after (``MM-DD-YYYY-NA-<description>-<5 digits>``,
    ``<number>.000000-<description>-<5 digits>``), so a fetch through the NBIA API, which lands
    ``<PatientID>/<StudyUID>/<SeriesUID>/``, holds the same series: invented UIDs ending in the folders' digits."""
    month, day, year = study.split("-")[:3]
    description = study.split("-", 4)[4].rsplit("-", 1)[0]
    number, series_description, series_tail = series.split("-")[0], *series.split("-", 1)[1].rsplit("-", 1)
    return {
        "StudyInstanceUID": generate_uid(entropy_srcs=[pid, study])[:-5] + study.rsplit("-", 1)[1],
        "SeriesInstanceUID": generate_uid(entropy_srcs=[pid, study, series])[:-5] + series_tail,
        "StudyDate": f"{year}{month}{day}",
        "StudyDescription": description,
        "SeriesNumber": str(int(float(number))),
        **({"SeriesDescription": series_description} if series_description != "NA" else {}),
    }


def build_sbu(portal: Path) -> set[str]:
    sample = portal / "covid-19-ny-sbu"
    mini = Folder("covid19_ny_sbu")
    table = "deidentified_overlap_tcia.csv.cleaned.csv_20210806.csv"
    lines = (sample / table).read_bytes().splitlines(keepends=True)
    by_pid = {line.split(b",")[0].decode(): line for line in lines[1:]}
    listed = covidx_lines(portal, "stonybrook")["train"]
    picks = [line for line in listed if line.split()[0] in by_pid][:3]
    picks += [line for line in listed if "ABDOMEN" in line and line.split()[0] in by_pid][:1]
    picks += [next(line for line in listed if line.split()[0] not in by_pid)]  # no clinical row
    held: set[str] = set()
    for number, line in enumerate(picks):
        match = _SBU_NAME.match(line.split()[1])
        pid, study, series = match["pid"], match["study"].replace("_", " "), match["series"].replace("_", " ")
        relative = f"COVID-19-NY-SBU/{pid}/{study}/{series}/{match['file']}.dcm"
        header = {"PatientID": pid, "Modality": ("CR", "DX")[number % 2], "ViewPosition": "AP"}
        header.update(sbu_series_header(pid, study, series))
        mini.write(relative, dicom(relative, header, jpeg=False), WHY_PORTAL)
        held.add(line.split()[1])
    ct = "COVID-19-NY-SBU/A002304/01-12-1901-NA-CT CHEST PULMONARY ANGIO WITH IV CON-70694/2.000000-NA-51234"
    for index in (1, 2):
        relative = f"{ct}/1-{index}.dcm"
        header = {"PatientID": "A002304", "Modality": "CT", **sbu_series_header("A002304", *ct.split("/")[2:])}
        mini.write(relative, dicom(relative, header, jpeg=False, kind="ct"), WHY_PORTAL)
    mixed = [p for p, line in by_pid.items() if b",NA," in line and b"not documented" in line][:1]
    keep = sorted({*(p.split()[0] for p in picks), "A002304", *mixed} & set(by_pid))
    mini.write(table, b"".join([lines[0], *(by_pid[p] for p in keep)]))
    mini.finish("Invented DICOMs in TCIA's download layout, named after real COVIDx 9A SBU images and a CT series.")
    return held


# --- BIMCV-COVID19+ ----------------------------------------------------------------------------


def build_bimcv(portal: Path) -> set[str]:
    mini = Folder("bimcv_covid19_pos")
    listed = covidx_lines(portal, "bimcv")["train"][:3]
    why = "BIMCV's agreement forbids redistribution: invented, in the documented MIDS layout and columns"
    held: set[str] = set()
    sessions = []
    for number, line in enumerate(listed):
        name = line.split()[1]
        stem = name.replace("-corrected.png", "")
        sub, ses = stem.split("_")[:2]
        relative = f"bimcv_covid19_posi_subjects_1/{sub}/{ses}/mod-rx/{stem}.png"
        mini.write(relative, png(relative), why)
        mini.write(relative.replace(".png", ".json"), json.dumps({"ViewPosition": "PA"}).encode(), why)
        held.add(name)
        sessions.append((sub, ses, number))
    lateral = (
        "bimcv_covid19_posi_subjects_1/sub-S03044/ses-E06790/mod-rx/sub-S03044_ses-E06790_run-2_bp-chest_vp-ll_cr.png"
    )
    mini.write(lateral, png(lateral), why)
    participants = "participant\tmodality_dicom\tage\tgender\n" + "".join(
        f"{sub}\t['CR', 'DX']\t[{50 + n}]\t{('M', 'F')[n % 2]}\n" for sub, _ses, n in sessions
    )
    mini.write("bimcv_covid19_posi_head_iter1/participants.tsv", participants.encode(), why)
    cuis = ("['C3544344', 'C0521530']", "['C3544344']", "[]")
    labels = "PatientID\tReportID\tLabels\tlabelCUIS\n" + "".join(
        f"{sub}\t{ses}\t{['ground glass pattern, consolidation', 'ground glass pattern', 'normal'][n]}\t{cuis[n]}\n"
        for sub, ses, n in sessions
    )
    mini.write("bimcv_covid19_posi_head_iter1/derivatives/labels/labels_covid19_posi.tsv", labels.encode(), why)
    mini.finish("Everything here is invented (BIMCV's agreement forbids redistribution), in the documented layout.")
    return held


# --- COVIDx CXR-4 ------------------------------------------------------------------------------


def build_release(portal: Path, names: dict[str, set[str]], package: str, splits: tuple[str, ...]) -> None:
    """Two pictures per origin that COVIDx 9A lists and the other miniatures hold, with 9A's patient ids."""
    mini = Folder(package)
    why = "the release's label files were not obtained: invented lines in the documented format, real 9A names"
    patients = {}
    for source in names:
        for lines in covidx_lines(portal, source).values():
            patients.update({line.split()[-3]: " ".join(line.split()[:-3]) for line in lines})
    lists: dict[str, list[str]] = {split: [] for split in splits}
    held = sorted((s, n) for s, group in names.items() for n in sorted(group & set(patients))[:2])
    for number, (source, name) in enumerate(held):
        split = splits[number % len(splits)]
        cls = "negative" if source == "rsna" else "positive"
        lists[split].append(f"{patients[name]} {name} {cls} {source}\n")
        mini.write(f"{split}/{name}", png(f"{package}/{name}"), WHY_PORTAL)
    lists["test"].append("badline.png positive\n")  # an unreadable line
    for split, lines in lists.items():
        mini.write(f"{split}.txt", "".join(lines).encode(), why)
    mini.finish("Invented pictures and label files in the documented format (`patient_id filename class data_source`).")


def build_portal_miniatures(portal: Path) -> set[str]:
    """Write every portal miniature; the COVIDx file names they hold."""
    names = {
        "rsna": build_rsna(portal),
        "sirm": build_radiography(portal),
        "ricord": build_ricord(portal),
        "stonybrook": build_sbu(portal),
        "bimcv": build_bimcv(portal),
    }
    build_release(portal, names, "covidx_cxr4", ("train", "val", "test"))
    build_release(portal, names, "covidx_cxr3", ("train", "test"))
    return set().union(*names.values())
