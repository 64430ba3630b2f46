"""Build every source's miniature (``src/covid19_images/sources/catalog/<source>/miniature/``)
from the real samples in ``../shared/upstream``.

A miniature is the upstream's real layout at its real relative paths, small enough to live in
the repository (all of them together stay under 5 MB), so ``testing/mirrors.py`` builds a bare
"upstream" from it exactly as from a sample folder and ``make demo`` / ``make test`` run on a
machine with nothing beside the clone:

- metadata files are the real ones, trimmed to the rows that reference the embedded files plus
  a few rows that exercise the quirks (absent files, volumes, ``todo``, blank findings ...);
  the bytes of every kept row (encoding, CRLF, BOM, quoting) are unchanged;
- a picture is the real one downscaled (longest side <= 256 px) and re-encoded in its own
  format, mode and JPEG flavour only where its licence allows redistribution with attribution
  (CC BY, CC BY-SA, CC0, Apache-2.0); otherwise it is a synthetic stand-in with the same name,
  format, mode, aspect ratio and flavour, listed in the folder's ``SYNTHETIC.md``;
- ``ATTRIBUTION.md`` (repository root) lists every real file embedded, and the real annotation
  files (BrixIA scores, V7 Darwin JSON) with their licences;
- the annotation sources (BrixIA, V7 Labs; ``miniature_annotations.py``) are built from the
  ieee8023 miniature so their joins hold at miniature scale, and Darshan's two copies of BrixIA
  pictures are resized copies of BrixIA's miniature files, as upstream.

Deterministic: re-running gives identical bytes. Usage::

    python scripts/build_miniatures.py [--shared ../shared/upstream]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from miniature_annotations import IEEE_BOXES, IEEE_MINI, build_brixia, build_v7, darshan_copy, ieee_boxes
from miniature_dicom import build_medseg_resolved, build_pos_case
from miniature_folder import ATTRIBUTION, CATALOG, PROJECT, Miniature, allowed, fresh, write_attribution
from miniature_media import facts, png16, seed_of, small_size, synthetic_grey, synthetic_like
from miniature_pocus import build_pocus
from miniature_portal import build_portal_miniatures
from miniature_portal_annotated import build_annotated_portal_miniatures

# --- ieee8023 --------------------------------------------------------------------------------

IEEE_SNAPSHOTS = (
    ("ieee8023-covid-chestxray-dataset__pinned-548bb58", "548bb58"),
    ("ieee8023-covid-chestxray-dataset", "584034a"),
)
IEEE_CITATION = "Cohen, Morrison, Dao: COVID-19 image data collection, arXiv:2003.11597 (2020)"


def build_ieee(shared: Path) -> set[str]:
    fresh("ieee8023_covid_chestxray")
    held: set[str] = set()
    synthetic: list[tuple[str, str]] = []
    for folder, sub in IEEE_SNAPSHOTS:
        sample = shared / folder
        mini = Miniature("ieee8023_covid_chestxray", sample, sub)
        with open(sample / "metadata.csv", newline="", encoding="utf-8") as handle:
            rows = [
                {(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(handle)
            ]
        first_row: dict[str, dict[str, str]] = {}
        for row in rows:
            first_row.setdefault(f"{row.get('folder') or 'images'}/{row['filename']}", row)
        present = sorted(p.relative_to(sample).as_posix() for p in (sample / "images").iterdir())
        for relative in present:
            row = first_row.get(relative, {})
            licence = row.get("license", "")
            if allowed(licence):
                credit = f"{IEEE_CITATION}; original: {row.get('url') or row.get('doi') or 'see metadata.csv'}"
                mini.real(relative, licence, credit)
            else:
                kind = "ct" if row.get("modality") == "CT" else "xray"
                mini.fake(
                    relative,
                    kind,
                    f"licence {licence!r} (per-image `license` column)" if licence else "no licence stated",
                )
            held.add(Path(relative).name)
        absent_seen = {"volumes": 0, "other": 0}

        def keep(_index: int, row: dict[str, str], sample: Path = sample, seen: dict = absent_seen) -> bool:
            relative = f"{row.get('folder') or 'images'}/{row.get('filename', '')}"
            if (sample / relative).is_file():
                return True
            bucket = "volumes" if relative.startswith("volumes/") else "other"
            seen[bucket] += 1
            return seen[bucket] <= 3  # a few rows whose file is absent upstream: reported, never fatal

        mini.trim_csv("metadata.csv", keep)
        for text in ("README.md", "SCHEMA.md", "volumes/DOWNLOAD.md", "annotations/covid-severity-scores.csv"):
            if (sample / text).is_file():
                mini.copy(text)
        masks = sample / "annotations/lungVAE-masks"
        if masks.is_dir():
            mini.copy("annotations/lungVAE-masks/README.md")
            for relative in ("ARDSSevere_mask.png", "X-ray_of_cyst_in_pneumocystis_pneumonia_1_mask.png"):
                mask = f"annotations/lungVAE-masks/{relative}"
                mini.real(mask, "CC BY-SA (annotations, README)", f"{IEEE_CITATION}; lungVAE masks", 256, mask=True)
        if (sample / IEEE_BOXES).is_file():
            mini.write(IEEE_BOXES, ieee_boxes(sample, mini.out / "images"))
        synthetic.extend(mini.synthetic)
    mini.synthetic = synthetic
    mini.finish(
        "Two snapshots of the upstream history: `548bb58/` (2020-03-24, the commit the original project "
        "pinned, old metadata schema) and `584034a/` (2020-06-22); `testing/mirrors.py` commits them in that order."
    )
    return held


# --- X-ray sources with folders or metadata --------------------------------------------------

KERMANY = "Kermany, Zhang, Goldbaum et al., Cell 172(5) 2018; Mendeley Data rscbjbr9sj v2"


def build_zhang(shared: Path) -> None:
    fresh("zhanglab_pediatric_xray")
    mini = Miniature("zhanglab_pediatric_xray", shared / "zhanglab-kermany-chest-xray")
    mini.copy("README.md")
    for path in sorted((mini.sample / "train").rglob("*.jpeg")):  # all 21: CC BY 4.0, ~8 KB each once downscaled
        mini.real(path.relative_to(mini.sample).as_posix(), "CC BY 4.0", KERMANY)


def build_nih(shared: Path) -> None:
    fresh("nih_chestxray14_sample")
    mini = Miniature("nih_chestxray14_sample", shared / "nih-chestxray14-sample")
    image = "sample/images/00001998_000.png"
    mini.real(image, "CC0 1.0 (NIH Clinical Center)", "Wang et al., ChestX-ray8, CVPR 2017; NIH Clinical Center")
    wanted = {"multi": 3, "none": 3, "age": 4}

    def keep(_index: int, row: dict[str, str]) -> bool:
        if row["Image Index"] == Path(image).name or row["Patient ID"] == "1998":
            return True
        kind = "age" if row["Patient Age"][-1:] in "MD" else "multi" if "|" in row["Finding Labels"] else None
        kind = kind or ("none" if row["Finding Labels"] == "No Finding" else None)
        if kind and wanted[kind] > 0:
            wanted[kind] -= 1
            return True
        return False

    mini.trim_csv("sample_labels.csv", keep)


#: Darshan files that are resized copies of BrixIA-scored pictures upstream (phash distance 2)
DARSHAN_COPIES = {
    "covid19-detection-xray-dataset/NonAugmentedTrain/COVID-19/36.jpeg": "7AF6C1AF-D249-4BD2-8C26-449304105D03.jpeg",
    "covid19-detection-xray-dataset/NonAugmentedTrain/COVID-19/9.jpeg": "nCoV-radiol.2020200269.fig1-day7.jpeg",
}


def build_darshan(shared: Path) -> None:
    fresh("darshan_xray")
    brixia = CATALOG / "brixia_score" / "miniature" / "data" / "public-cohen-subset"
    sample = shared / "coyotespike-covid19-detection-xray-dataset"
    mini = Miniature("darshan_xray", sample)
    for text in ("LICENSE", "README.md"):
        mini.copy(text)
    why = "resized copies of ieee8023/Zhang Lab images (mixed, partly NC/ND licences); Kaggle licence not stated"
    for path in sorted((sample / "covid19-detection-xray-dataset").rglob("*.jpeg")):
        relative = path.relative_to(sample).as_posix()
        if relative in DARSHAN_COPIES:  # keep the quirk: a resized copy of a scored picture gets its scores
            mini.write(relative, darshan_copy(brixia / DARSHAN_COPIES[relative], path, 160))
            mini.note(relative, f"{why}; a resized copy of the brixia-score miniature's `{DARSHAN_COPIES[relative]}`, "
                      "as upstream's file is a resized copy of that picture")  # fmt: skip
        else:
            mini.fake(relative, "xray", why, max_side=160)
    mini.finish()


FIGURE1_KEEP = (
    "COVID-00003a",
    "COVID-00012",
    "COVID-00014",
    "COVID-00020",
    "COVID-00022",
    "COVID-00039a",
    "COVID-00039c",
    "COVID-00040a",
    "COVID-00040b",
    "COVID-00048",
)


def build_figure1(shared: Path) -> set[str]:
    fresh("figure1_xray")
    sample = shared / "agchung-Figure1-COVID-chestxray-dataset"
    mini = Miniature("figure1_xray", sample)
    mini.copy("README.md")
    held = set()
    for path in sorted((sample / "images").iterdir()):
        if path.stem in FIGURE1_KEEP:
            mini.fake(f"images/{path.name}", "xray", '"research purposes only", no licence stated')
            held.add(path.name)
    others = [0]

    def keep(_index: int, row: dict[str, str]) -> bool:
        if row["patientid"] in FIGURE1_KEEP:
            return True
        others[0] += 1
        return others[0] <= 8  # rows whose picture is not held (several with a blank finding)

    mini.trim_csv("metadata.csv", keep)
    mini.finish()
    return held


def build_actualmed(shared: Path) -> set[str]:
    fresh("actualmed_xray")
    sample = shared / "agchung-Actualmed-COVID-chestxray-dataset"
    mini = Miniature("actualmed_xray", sample)
    mini.copy("README.md")
    kept = sorted(p.name for p in (sample / "images").iterdir())[:5]
    for name in kept:
        mini.fake(f"images/{name}", "xray", '"research purposes only", no licence stated', max_side=224)
    others = {"blank": 0, "other": 0}

    def keep(_index: int, row: dict[str, str]) -> bool:
        if row["imagename"] in kept:
            return True
        bucket = "blank" if not row["finding"] else "other"
        others[bucket] += 1
        return others[bucket] <= 4

    mini.trim_csv("metadata.csv", keep)
    mini.finish()
    return set(kept)


# --- CT --------------------------------------------------------------------------------------


def build_text_only(shared: Path, package: str, folder: str, files: tuple[str, ...]) -> None:
    fresh(package)
    mini = Miniature(package, shared / folder)
    for relative in files:
        mini.copy(relative)


def build_medseg(shared: Path, pos_case: Path) -> None:
    """Two snapshots: ``lfs-pointers/`` (the real clone without git-lfs: pointer texts) and
    ``lfs-resolved/`` (what git-lfs would put there; synthetic stand-in volumes)."""
    fresh("medseg_ct")
    sample = shared / "coyotespike-medseg_ct_dataset"
    pointers = Miniature("medseg_ct", sample, "lfs-pointers")
    resolved = Miniature("medseg_ct", sample, "lfs-resolved")
    for relative in (".gitattributes", "LICENSE", "README.md", "dataset/tr_im.nii", "dataset/tr_mask.nii"):
        pointers.copy(relative)
    pointers.copy("dataset/val_im.nii")
    for relative in ("LICENSE", "README.md"):
        resolved.copy(relative)
    resolved.synthetic = build_medseg_resolved(pos_case, resolved.out)
    resolved.finish(
        "Two snapshots: `lfs-pointers/` is the real repository as a clone without git-lfs has it (130-byte "
        "pointer files, committed first); `lfs-resolved/` is the same tree with the volumes present "
        "(committed second, so a synced root has NIfTI volumes)."
    )


UCSD_KEEP = (
    "CT_COVID/2020.02.25.20021568-p24-111%7.png",
    "CT_COVID/Comparison-of-different-samples-for-2019-novel-cor_2020_International-Journa-p2-21%9.png",
    "CT_COVID/PIIS0140673620301549_0%1.png",
    "CT_COVID/PIIS0140673620301549_1.png",
    "CT_COVID/Recurrence-of-positive-SARS-CoV-2-RNA-in-C_2020_International-Journal-of-Inf-p1-21%0.png",
    "CT_COVID/kjr-21-e25-p1-6.png",
    "CT_COVID/med-9780198814924-chapter-17-p10-515.png",
    # papers whose key hashes to val and test: the demo's CT has every split
    "CT_COVID/impact_of_covid19_infection_on_pregnancy_outcomes_and_the_risk_of_maternaltoneonatal_intrapartum_transmission_of_covid19_during_natural_birth-p8-41%1.png",
    "CT_COVID/Ni2020_Article_CombinationOfWesternMedicineAn-p4-13%1.png",
    "CT_NonCOVID/2140.png",
    "CT_NonCOVID/5%0.jpg",
    "CT_NonCOVID/5%1.jpg",
    "CT_NonCOVID/5%3.jpg",
    "CT_NonCOVID/67%0.jpg",
    "CT_NonCOVID/78.jpg",
    "CT_NonCOVID/84%3.jpg",
)
UCSD_16BIT = "CT_COVID/kjr-21-e25-p1-6.png"
#: Non-COVID slices named in the official lists that the sample lacks, as synthetic stand-ins shaped
#: like the sample's ``2140.png``: their patients (``noncovid:754``, ``:1070``; ``:23``) hash to val, test.
UCSD_STAND_INS = ("CT_NonCOVID/754.png", "CT_NonCOVID/1070.png", "CT_NonCOVID/23.png")
UCSD_TEMPLATE = "Images/CT_NonCOVID/2140.png"


def build_ucsd(shared: Path) -> None:
    fresh("ucsd_covid_ct")
    sample = shared / "UCSD-AI4H-COVID-CT"
    mini = Miniature("ucsd_covid_ct", sample)
    why = "licence not stated in any file obtained"
    for relative in UCSD_KEEP:
        path = f"Images/{relative}"
        if relative == UCSD_16BIT:
            _fmt, _mode, size, _ = facts(sample / path)
            width, height = small_size(size, 192)
            mini.write(path, png16(synthetic_grey("ct", width, height, seed_of(path))))
            mini.note(path, why + "; stored as 16-bit greyscale PNG (upstream: 8-bit) so the miniature has one")
        else:
            mini.fake(path, "ct", why, max_side=192)
    for relative in UCSD_STAND_INS:
        path = f"Images/{relative}"
        mini.write(path, synthetic_like(sample / UCSD_TEMPLATE, path, "ct", max_side=192))
        mini.note(path, why + "; not in the sample (named in Data-split): a stand-in for the demo's val/test splits")
    names = {Path(r).name for r in (*UCSD_KEEP, *UCSD_STAND_INS)}
    for listing in sorted((sample / "Data-split").rglob("*.txt")):
        lines = listing.read_bytes().splitlines(keepends=True)
        absent = [line for line in lines if line.strip().decode() not in names][:2]
        # held names, two absent ones, and the "-p23-" page tokens that look like patients (UCSD-AI4H/COVID-CT#11)
        kept = [line for line in lines if line.strip().decode() in names or line in absent or b"-p23-" in line]
        mini.write(listing.relative_to(sample).as_posix(), b"".join(kept))
    mini.finish()


# --- COVIDx split definitions ----------------------------------------------------------------


def build_covidx(shared: Path, held: set[str]) -> None:
    fresh("covidx_splits")
    sample = shared / "lindawangg-COVID-Net"
    mini = Miniature("covidx_splits", sample)
    for text in ("LICENSE.md", "README.md", "docs/COVIDx.md"):
        mini.copy(text)
    for listing in sorted((sample / "labels").glob("*.txt")):
        lines = listing.read_bytes().splitlines(keepends=True)
        kept = [
            line
            for index, line in enumerate(lines)
            if index < 25 or (len(line.split()) > 1 and line.split()[1].decode(errors="replace") in held)
        ]
        mini.write(listing.relative_to(sample).as_posix(), b"".join(kept))
    severity = (sample / "annotations/severity_annotations.csv").read_bytes().splitlines(keepends=True)
    mini.write("annotations/severity_annotations.csv", b"".join(severity[:21]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared" / "upstream")
    shared = parser.parse_args().shared
    if not (shared / "INDEX.md").is_file():
        sys.exit(f"no upstream samples at {shared}")
    held = build_ieee(shared)
    assert IEEE_MINI.is_dir()
    build_brixia(shared)  # after ieee8023 (its copies are the ieee8023 miniature's bytes), before Darshan
    build_v7(shared)
    build_zhang(shared)
    build_nih(shared)
    build_darshan(shared)
    held |= build_figure1(shared)
    held |= build_actualmed(shared)
    build_text_only(shared, "ahp_ct", "coyotespike-AHP-covid19-ctscans", ("README.md",))
    fresh("covid19_pos_case")
    pos_case = CATALOG / "covid19_pos_case" / "miniature"
    build_pos_case(shared / "coyotespike-covid-19-pos-case", pos_case)
    build_medseg(shared, pos_case / "COVID-19-pos-case")
    build_ucsd(shared)
    build_pocus(shared)
    portal = shared.parent / "upstream-portal"
    if portal.is_dir():  # the portal sources' miniatures, and the COVIDx lines naming their pictures
        held |= build_portal_miniatures(portal)
        build_annotated_portal_miniatures()  # after RICORD-1c: SIIM re-encodes one of its pictures
    build_covidx(shared, held)
    write_attribution()
    total = sum(p.stat().st_size for p in CATALOG.glob("*/miniature/**/*") if p.is_file())
    count = sum(1 for p in CATALOG.glob("*/miniature/**/*") if p.is_file())
    print(json.dumps({"files": count, "bytes": total, "real_pictures": len(ATTRIBUTION)}))


if __name__ == "__main__":
    main()
