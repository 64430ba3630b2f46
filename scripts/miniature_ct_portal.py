"""Miniatures of the CT portal sources of issue 22: MosMedData, STOIC2021, COVID-CT-MD, COVIDx CT-3A.

Every voxel and pixel is synthetic (seeded noise, boxes for masks): MosMedData is CC BY-NC-ND
(no derivative may be shared), STOIC is CC BY-NC, COVID-CT-MD's licence is unknown, and COVIDx CT
carries each source's licence. Metadata: STOIC's ``reference.csv`` keeps three real rows (facts:
id, RT-PCR, outcome); COVIDx CT's lists keep one real line of the public test list, the others are
written in the real format for slices of the volumes the other miniatures hold (so the identity
edges have something to join); MosMed's workbook and COVID-CT-MD's ``Index.csv`` and label array
are our own, in the real layout (MosMed's ND licence forbids a trimmed copy of its workbook).

Run: ``python scripts/miniature_ct_portal.py`` (deterministic: the same bytes on every run; the
workbook's zip member dates are rewritten to ``FIXED_TIME``).
"""

from __future__ import annotations

import datetime
import io
import re
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import SimpleITK as sitk
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PROJECT = Path(__file__).resolve().parents[1]
CATALOG = PROJECT / "src/covid19_images/sources/catalog"
SIDE, SLICES = 16, 6
FIXED_TIME = datetime.datetime(2020, 4, 28)
WHY = "synthetic stand-in: the licence forbids embedding or no picture was obtained"


def noise_volume(seed: int, slices: int = SLICES) -> np.ndarray:
    """HU-like int16 ``(x, y, z)``: air outside a body disc, lung-like values inside."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIDE, :SIDE]
    body = (yy - SIDE / 2) ** 2 + (xx - SIDE / 2) ** 2 < (SIDE / 2.2) ** 2
    volume = np.where(body[..., None], rng.normal(-700, 150, (SIDE, SIDE, slices)), -1000)
    return volume.astype(np.int16)


def box_mask(slices: int, values: dict[int, tuple[slice, slice, slice]]) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE, slices), dtype=np.uint8)
    for value, where in values.items():
        mask[where] = value
    return mask


def write_nifti(path: Path, data: np.ndarray, zooms=(0.8, 0.8, 8.0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nibabel.Nifti1Image(data, np.diag([-zooms[0], -zooms[1], zooms[2], 1.0]))
    image.header.set_zooms(zooms)
    raw = io.BytesIO()
    file_map = image.make_file_map({"image": raw})
    image.to_file_map(file_map)
    import gzip

    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))


def fixed_zip_dates(path: Path) -> None:
    """Rewrite a zip (an .xlsx) with fixed member dates, in its own member order: same bytes on every run."""
    import zipfile

    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()  # openpyxl writes the save time as `modified`
    members = [(n, re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, d)) for n, d in members]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name, data in members:
            target.writestr(zipfile.ZipInfo(name, date_time=FIXED_TIME.timetuple()[:6]), data, zipfile.ZIP_DEFLATED)
    path.write_bytes(out.getvalue())


def synthetic_md(folder: Path, intro: str, files: list[str]) -> None:
    rows = "\n".join(f"| `{name}` | {WHY} |" for name in sorted(files))
    text = f"# Synthetic files in this miniature\n\n{intro}\nNot medical images: never train or evaluate on them.\n\n"
    (folder / "SYNTHETIC.md").write_text(text + "| file | why synthetic |\n|---|---|\n" + rows + "\n")


def fresh(package: str) -> Path:
    import shutil

    folder = CATALOG / package / "miniature"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


# --- MosMedData ----------------------------------------------------------------------------
MOSMED = [(1, "CT-0"), (255, "CT-1"), (939, "CT-2"), (1109, "CT-4")]  # real ids of each grade; 255 has a mask


def build_mosmed() -> None:
    import openpyxl

    folder = fresh("mosmeddata")
    base = folder / "COVID19_1110"
    written = []
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "MosMedData COVID19_1110"
    sheet.append(["study_id", "category", "study_file", "mask_file"])
    for study, grade in MOSMED:
        name = f"study_{study:04d}"
        write_nifti(base / f"studies/{grade}/{name}.nii.gz", noise_volume(study))
        written.append(f"COVID19_1110/studies/{grade}/{name}.nii.gz")
        mask_cell = None
        if study == 255:
            mask = box_mask(SLICES, {1: (slice(4, 10), slice(3, 7), slice(2, 4))})
            write_nifti(base / f"masks/{name}_mask.nii.gz", mask)
            written.append(f"COVID19_1110/masks/{name}_mask.nii.gz")
            mask_cell = f"/masks/{name}_mask.nii.gz"
        sheet.append([study, grade, f"/studies/{grade}/{name}.nii.gz", mask_cell])  # missing cell, as upstream
    book.properties.created = book.properties.modified = FIXED_TIME
    book.save(base / "dataset_registry.xlsx")
    fixed_zip_dates(base / "dataset_registry.xlsx")
    written.append("COVID19_1110/dataset_registry.xlsx")
    synthetic_md(
        folder,
        "CC BY-NC-ND 3.0: nothing of the dataset is here. Volumes are seeded noise, the mask a box; the workbook "
        "is ours, in the real layout (sheet name, columns, leading `/`, missing mask cells) with real study ids.",
        written,
    )


# --- STOIC2021 -----------------------------------------------------------------------------
STOIC = [("17", "0", "0"), ("6", "1", "0"), ("55", "1", "1")]  # real rows of reference.csv, one per outcome


def build_stoic() -> None:
    folder = fresh("stoic2021")
    (folder / "metadata").mkdir()
    lines = ["PatientID,probCOVID,probSevere", *(",".join(row) for row in STOIC)]
    (folder / "metadata/reference.csv").write_text("\n".join(lines) + "\n")
    (folder / "data/mha").mkdir(parents=True)
    written = []
    for patient, _covid, _severe in STOIC:
        volume = np.transpose(noise_volume(int(patient) + 5000), (2, 1, 0))  # (z, y, x) for SimpleITK
        image = sitk.GetImageFromArray(volume)
        image.SetSpacing((0.7, 0.7, 1.25))
        sitk.WriteImage(image, str(folder / f"data/mha/{patient}.mha"), useCompression=True)
        written.append(f"data/mha/{patient}.mha")
    synthetic_md(
        folder,
        "CC BY-NC 4.0 (AP-HP, STOIC project). `metadata/reference.csv` keeps three real rows (one per outcome); "
        "the volumes are seeded noise written by SimpleITK as compressed MetaImage.",
        written,
    )


# --- COVID-CT-MD ---------------------------------------------------------------------------
#: patient folder -> (DICOM PatientID, file names in the upstream's two naming schemes)
CTMD = {
    "COVID-19 subjects/P001": ("98C14734-ASSH", ["98C14734-ASSH_1.dcm", "98C14734-ASSH_2.dcm", "98C14734-ASSH_10.dcm"]),
    "COVID-19 subjects/P002": ("P002", ["IM0001.dcm", "IM0002.dcm", "IM0003.dcm"]),
    "Cap subjects/cap001": ("98C1066-ASAD", ["98C1066-ASAD_1.dcm", "98C1066-ASAD_2.dcm"]),
    "Normal subjects/normal001": ("99C628-ASAD", ["99C628-ASAD_1.dcm", "99C628-ASAD_2.dcm"]),
}


def ct_dicom(path: Path, patient: str, study: str, series: str, number: int, location: float, seed: int) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[path.as_posix()])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "CT", patient, study, series
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [-162.2, -293.2, location]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = location
    ds.PixelSpacing = [0.6035, 0.6035]
    ds.SliceThickness = 2.0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.Rows = ds.Columns = SIDE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    values = noise_volume(seed, 1)[..., 0].astype(np.int32) + 1024
    ds.PixelData = np.clip(values, 0, 4095).astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def build_ct_md() -> None:
    folder = fresh("covid_ct_md")
    written = []
    for k, (patient_folder, (patient, names)) in enumerate(CTMD.items()):
        study = generate_uid(entropy_srcs=[patient_folder, "study"])
        series = generate_uid(entropy_srcs=[patient_folder, "series"])
        for name in names:
            number = int(name.rsplit("_", 1)[-1].removeprefix("IM").removesuffix(".dcm"))
            # Slice Location decreases with the number: file-name order is not position order
            ct_dicom(
                folder / patient_folder / name, patient, study, series, number, -100.0 - 2 * number, 100 * k + number
            )
            written.append(f"{patient_folder}/{name}")
    labelled = ["P001", "P002", "cap001"]  # Index.csv covers the COVID-19 and CAP patients only
    rows = ["Label Index,Diagnosis,Relative Path,Folder/ID", "0,COVID-19,./COVID-19/,P001",
            "1,COVID-19,./COVID-19/,P002", "2,CAP,./CAP/,cap001"]  # fmt: skip
    (folder / "Index.csv").write_text("\n".join(rows) + "\n")
    labels = np.zeros((len(labelled), 200), dtype=np.int32)
    labels[0, 1] = labels[1, 0] = labels[1, 2] = labels[2, 1] = 1  # by Slice Location rank
    np.save(folder / "Slice-level-labels-updated-1.npy", labels)
    written += ["Index.csv", "Slice-level-labels-updated-1.npy"]
    synthetic_md(
        folder,
        "Licence unknown (COVIDNet-CT: 'assumed to be open access'): nothing of the dataset is here. DICOMs are "
        "seeded noise with the real header structure (both naming schemes, Slice Location against name order); "
        "`Index.csv` and the label array are ours, in the real format (row = position in Index.csv).",
        written,
    )


# --- COVIDx CT-3A --------------------------------------------------------------------------
#: list -> lines; the test line is real (test_COVIDx_CT-3A.txt), the rest name slices the other miniatures hold
COVIDX_CT = {
    "train_COVIDx_CT-3A.txt": ["STOIC-6-0002.png 2 0 0 16 16", "study_0255-0002.png 2 1 1 15 15"],
    "val_COVIDx_CT-3A.txt": ["coronacases_001-0002.png 2 0 0 16 16", "COVIDCTMD-P002-IM0002.png 2 0 0 16 16"],
    "test_COVIDx_CT-3A.txt": ["NCP_341_1834_0022.png 2 0 130 512 429", "STOIC-17-0003.png 0 0 0 16 16"],
}


def build_covidx_ct() -> None:
    folder = fresh("covidx_ct")
    written = []
    for list_name, lines in COVIDX_CT.items():
        (folder / list_name).write_text("\n".join(lines))  # no trailing newline, as upstream
        for number, line in enumerate(lines):
            name = line.split()[0]
            rng = np.random.default_rng(sum(map(ord, name)) + number)
            picture = Image.fromarray(rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8))
            (folder / "3A_images").mkdir(exist_ok=True)
            picture.save(folder / "3A_images" / name, optimize=False)
            written.append(f"3A_images/{name}")
    synthetic_md(
        folder,
        "Per-image licences (CC BY 4.0 to CC BY-NC-ND 3.0): no slice is here. PNGs are seeded noise. One list line "
        "is real (`NCP_341_1834_0022.png`, test list); the others are written in the real format for slices of "
        "the STOIC, MosMed, Zenodo 3757476 and COVID-CT-MD miniatures (STOIC and MosMed name forms [unverified]).",
        [*written, *COVIDX_CT],
    )


def main() -> None:
    build_mosmed()
    build_stoic()
    build_ct_md()
    build_covidx_ct()


if __name__ == "__main__":
    main()
