"""Miniatures of the two annotation sources, BrixIA (scores) and V7 Labs (lung masks).

Both annotate ieee8023 pictures, so their miniatures are built from the ieee8023 miniature
(``584034a/``, built first) to keep the real joins working at miniature scale:

- BrixIA's images are byte-identical copies of ieee8023 files: where upstream's copy is
  identical to an ieee8023 file held in the miniature, BrixIA's miniature file is the ieee8023
  miniature's bytes (so both land in one duplicate group, as upstream). Its other images keep
  their per-image ieee8023 licence (real downscaled only where CC BY/BY-SA/CC0/Apache, else
  synthetic). ``data/public-annotations.csv`` keeps the real rows of the held images, of
  ieee8023 miniature images BrixIA does not copy, and a few rows whose image is absent.
- V7's masks are real (CC BY 4.0), resized with nearest neighbour to the size of the ieee8023
  miniature image they name; ``covid-only.zip`` holds their real Darwin JSON with
  ``image.width``/``height`` and the polygon coordinates scaled to that size, plus one entry
  whose image is not in the miniature; some masks are not in the zip at all (reported).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from miniature_folder import ANNOTATION_TEXTS, ATTRIBUTION, CATALOG, Miniature, allowed, fresh
from miniature_media import facts, small_size
from PIL import Image

IEEE_MINI = CATALOG / "ieee8023_covid_chestxray" / "miniature" / "584034a"
IEEE_CITATION = "Cohen, Morrison, Dao: COVID-19 image data collection, arXiv:2003.11597 (2020)"

# --- BrixIA ----------------------------------------------------------------------------------

BRIXIA_SCORES = "data/public-annotations.csv"
BRIXIA_IMAGES = "data/public-cohen-subset"
#: scored images BrixIA holds that are not ieee8023 miniature files: two that Darshan copies
#: resized (NonAugmentedTrain/COVID-19/36.jpeg and 9.jpeg), one PNG, one Brescia image.
BRIXIA_OTHERS = (
    "7AF6C1AF-D249-4BD2-8C26-449304105D03.jpeg",
    "nCoV-radiol.2020200269.fig1-day7.jpeg",
    "radiol.2020200274.fig3d.png",
    "2B8649B2-00C4-4233-85D5-1CE240CF233B.jpeg",
)
SAME_BYTES = (
    "byte-identical copy of the ieee8023 miniature's synthetic stand-in "
    "(upstream's file is a byte-identical copy of the ieee8023 file)"
)
BRIXIA_CITATION = (
    "Signoroni, Savardi, Benini et al., BS-Net, Medical Image Analysis 71 (2021) 102046; BrixIA/Brixia-score-COVID-19"
)


def _ieee_licences(shared: Path) -> dict[str, dict[str, str]]:
    with open(shared / "ieee8023-covid-chestxray-dataset" / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(handle)]
    first: dict[str, dict[str, str]] = {}
    for row in rows:
        first.setdefault(row["filename"], row)
    return first


def build_brixia(shared: Path) -> None:
    fresh("brixia_score")
    sample = shared / "BrixIA-Brixia-score-COVID-19"
    ieee_sample = shared / "ieee8023-covid-chestxray-dataset" / "images"
    mini = Miniature("brixia_score", sample)
    mini.copy("README.md")
    ieee_rows = _ieee_licences(shared)
    ieee_synthetic = (IEEE_MINI.parent / "SYNTHETIC.md").read_text()
    held: set[str] = set()
    for path in sorted((sample / BRIXIA_IMAGES).iterdir()):
        name, relative = path.name, f"{BRIXIA_IMAGES}/{path.name}"
        twin = IEEE_MINI / "images" / name
        if twin.is_file() and (ieee_sample / name).is_file() and (ieee_sample / name).read_bytes() == path.read_bytes():
            mini.write(relative, twin.read_bytes())
            if f"`584034a/images/{name}`" in ieee_synthetic:
                mini.note(relative, SAME_BYTES)
            else:
                row = ieee_rows[name]
                ATTRIBUTION.append(("brixia_score", relative, row["license"], f"{IEEE_CITATION}; copied by BrixIA"))
            held.add(name)
        elif name in BRIXIA_OTHERS:
            licence = ieee_rows.get(name, {}).get("license", "")
            if allowed(licence):
                mini.real(relative, licence, f"{IEEE_CITATION}; copied by BrixIA")
            else:
                why = f"licence {licence!r} (ieee8023 `license` column)" if licence else "no ieee8023 licence stated"
                mini.fake(relative, "xray", why)
            held.add(name)
    in_ieee = {p.name for p in (IEEE_MINI / "images").iterdir()}
    absent = [0]

    def keep(_index: int, row: dict[str, str]) -> bool:
        name = row.get("filename", "")
        if name in held or name in in_ieee:
            return True  # scores on held copies, and on ieee8023 images BrixIA does not copy
        absent[0] += 1
        return absent[0] <= 4  # rows whose image is in neither miniature: reported, never fatal

    mini.trim_csv(BRIXIA_SCORES, keep)
    ANNOTATION_TEXTS.append(
        (
            "brixia_score",
            BRIXIA_SCORES,
            "CC BY-NC-SA 4.0",
            "real rows (scores of the held images, of ieee8023 miniature images, and 4 of absent images), "
            "unchanged; redistributed non-commercially under the same licence. " + BRIXIA_CITATION,
        )
    )
    mini.finish(
        "The scores in `data/public-annotations.csv` are real (CC BY-NC-SA 4.0, see ATTRIBUTION.md); only "
        "the pictures listed here are invented."
    )


def darshan_copy(brixia_file: Path, upstream: Path, max_side: int) -> bytes:
    """A resized copy of a BrixIA miniature picture in the Darshan file's format, mode and size,
    as upstream's Darshan file is a resized copy of the BrixIA/ieee8023 picture."""
    fmt, _mode, size, progressive = facts(upstream)
    with Image.open(brixia_file) as image:
        image.load()
        small = image.convert("L").resize(small_size(size, max_side), Image.LANCZOS)
    out = io.BytesIO()
    small.convert("RGB").save(out, fmt, quality=80, progressive=progressive, optimize=progressive)
    return out.getvalue()


# --- V7 Labs ---------------------------------------------------------------------------------

V7_MASKS = "annotations/all-images-semantic-masks"
V7_ZIP = "annotations/covid-only.zip"
#: masks whose covid-only.zip entry names an ieee8023 miniature image (joined)
V7_JOINED = ("1676310", "1676316", "1676711", "1676777", "1676839")
#: in covid-only.zip, but its image (01E392EE-...jpeg) is not in the ieee8023 miniature (reported)
V7_IMAGE_ABSENT = ("1676263",)
#: not in covid-only.zip: Zhang Lab / non-COVID images, named only in all-images.zip (reported)
V7_NOT_IN_ZIP = ("960383", "1676564")
V7_CITATION = (
    "V7 Labs, COVID-19 chest X-ray dataset (lung segmentations on V7 Darwin), 2020; v7labs/covid-19-xray-dataset"
)
#: a fixed timestamp so the zip's bytes do not depend on when it was built
ZIP_TIME = (2020, 6, 29, 13, 3, 44)


def _scaled(value: object, factor: tuple[float, float], axis: str) -> object:
    if isinstance(value, dict):
        return {k: _scaled(v, factor, k if k in ("x", "y", "w", "h") else axis) for k, v in value.items()}
    if isinstance(value, list):
        return [_scaled(v, factor, axis) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool) and axis in ("x", "w"):
        return round(value * factor[0], 2)
    if isinstance(value, int | float) and not isinstance(value, bool) and axis in ("y", "h"):
        return round(value * factor[1], 2)
    return value


def build_v7(shared: Path) -> None:
    fresh("v7labs_lung_masks")
    sample = shared / "v7labs-covid-19-xray-dataset"
    mini = Miniature("v7labs_lung_masks", sample)
    mini.copy("README.md")
    mini.copy(f"{V7_MASKS}/class_mapping.csv")
    entries: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(sample / V7_ZIP) as archive:
        for darwin_id in (*V7_JOINED, *V7_IMAGE_ABSENT, *V7_NOT_IN_ZIP):
            mask = sample / V7_MASKS / f"{darwin_id}.png"
            with Image.open(mask) as opened:
                opened.load()
                original = opened.size
                data = json.loads(archive.read(f"{darwin_id}.json")) if darwin_id not in V7_NOT_IN_ZIP else None
                twin = IEEE_MINI / "images" / data["image"]["original_filename"] if data else None
                if twin is not None and twin.is_file():
                    with Image.open(twin) as picture:
                        size = picture.size  # the ieee8023 miniature image: the join checks this size
                else:
                    size = small_size(original)
                small = opened.resize(size, Image.NEAREST)  # keeps the class values 0 / 127 / 255
            out = io.BytesIO()
            small.save(out, "PNG", optimize=True)
            relative = f"{V7_MASKS}/{darwin_id}.png"
            mini.write(relative, out.getvalue())
            credit = V7_CITATION + " (resized, nearest neighbour)"
            ATTRIBUTION.append(("v7labs_lung_masks", relative, "CC BY 4.0", credit))
            if data is not None:
                factor = (size[0] / data["image"]["width"], size[1] / data["image"]["height"])
                data = {k: v if k == "image" else _scaled(v, factor, "") for k, v in data.items()}
                data["image"] = {**data["image"], "width": size[0], "height": size[1]}
                entries.append((f"{darwin_id}.json", json.dumps(data, separators=(",", ":")).encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in sorted(entries):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)
    mini.write(V7_ZIP, buffer.getvalue())
    ANNOTATION_TEXTS.append(
        (
            "v7labs_lung_masks",
            V7_ZIP,
            "CC BY 4.0",
            f"{len(entries)} of the 517 real Darwin JSON files, `image.width`/`height` and polygon coordinates "
            f"scaled to the miniature image. " + V7_CITATION,
        )
    )


# --- ieee8023's own lung boxes ---------------------------------------------------------------

IEEE_BOXES = "annotations/imageannotation_ai_lung_bounding_boxes.json"
#: boxes kept for images the miniature does not hold (reported as unjoined, as in the real sample)
BOXES_ABSENT = 2


def ieee_boxes(sample: Path, images: Path) -> bytes:
    """The real COCO box file (CC BY-SA per the README) trimmed to the held images, each image's
    ``width``/``height`` and its boxes scaled (rounded to whole pixels, as upstream) to the
    miniature picture, plus the first few images the miniature lacks, unchanged."""
    data = json.loads((sample / IEEE_BOXES).read_text())
    kept: dict[int, tuple[float, float]] = {}
    absent = 0
    for image in data["images"]:
        held = images / image["file_name"]
        if held.is_file():
            with Image.open(held) as picture:
                size = picture.size
            kept[image["id"]] = (size[0] / image["width"], size[1] / image["height"])
            image["width"], image["height"] = size
        elif absent < BOXES_ABSENT:
            absent += 1
            kept[image["id"]] = (1.0, 1.0)
    data["images"] = [i for i in data["images"] if i["id"] in kept]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in kept]
    for box in data["annotations"]:
        fx, fy = kept[box["image_id"]]
        x, y, w, h = box["bbox"]
        box["bbox"] = [round(x * fx), round(y * fy), max(1, round(w * fx)), max(1, round(h * fy))]
        box["area"] = box["bbox"][2] * box["bbox"][3]
    ANNOTATION_TEXTS.append(
        (
            "ieee8023_covid_chestxray",
            f"584034a/{IEEE_BOXES}",
            "CC BY-SA (README; the JSON itself names CC BY 4.0)",
            f"{len(data['images'])} of the real COCO images with their boxes, sizes and boxes scaled to the "
            "miniature pictures. Andrew Gough, General Blockchain, Inc.; " + IEEE_CITATION,
        )
    )
    return (json.dumps(data, indent=1) + "\n").encode()
