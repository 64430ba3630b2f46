"""Measure the 3-D duplicate search (manifest/volume_duplicates.py) on real CT: false negatives and positives.

Real CT held in ``../shared/upstream``: the 18 axial 512x512 DICOM slices of
``coyotespike-covid-19-pos-case`` (one COVID-19 patient, several series, z from -590 to +140 mm)
and the CT pictures of ``UCSD-AI4H-COVID-CT`` (single slices cut from papers, hundreds of patients).

* **Positives** (each must join the original volume ``V`` = the 18 slices in z order): an exact copy;
  the copy resampled in-plane to 256 x 256 (trilinear, as ``spacing=`` does); every other slice
  (a z-resample, as MosMed's "every 10th image"); 6 contiguous slices (a subset); a copy with
  +-15 HU noise; each slice alone as a 256 x 256 lung-windowed PNG (COVIDx CT's slices).
* **Negatives** (none may join): every UCSD picture alone against ``V``; pseudo-volumes of 6 UCSD
  pictures of different patients against ``V`` and against each other; ``V``'s odd slices against
  its even slices (the same patient at other levels: the hardest negative we hold).

Run: ``python scripts/measure_volume_dedup.py [--slice-accept N] [--single-accept N]``; it prints a
table of found / missed / false edges per case, which ``docs/dedup-threshold.md`` quotes. The search
runs fresh, and again as syncs run it (one unit added per sync on the stored slice index of the one
before), and stops if the two disagree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from covid19_images.imaging.decode import read_pixels
from covid19_images.imaging.decoded import LUNG_WINDOW, to_uint8
from covid19_images.imaging.fingerprints import perceptual_hash, to_gray
from covid19_images.manifest.volume_duplicates import slice_hashes, volume_edges

SHARED = Path(__file__).resolve().parents[2] / "shared" / "upstream"


def real_volume() -> np.ndarray:
    """The pos-case patient's 512x512 axial slices, HU, in z order."""
    slices = []
    for path in sorted((SHARED / "coyotespike-covid-19-pos-case/COVID-19-pos-case").iterdir()):
        ds = pydicom.dcmread(path)
        if (ds.Rows, ds.Columns) != (512, 512):
            continue  # the scout
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        slices.append((float(ds.ImagePositionPatient[2]), hu))
    slices.sort(key=lambda item: item[0])
    return np.stack([s for _z, s in slices])


def ucsd_pictures(limit: int) -> list[np.ndarray]:
    """Other patients' CT slices: UCSD's pictures and ieee8023's CT rows (metadata.csv ``modality`` CT)."""
    import csv

    folder = SHARED / "UCSD-AI4H-COVID-CT"
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    ieee = SHARED / "ieee8023-covid-chestxray-dataset"
    with open(ieee / "metadata.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            path = ieee / row.get("folder", "images") / row["filename"]
            if row.get("modality") == "CT" and path.is_file():
                files.append(path)
    return [read_pixels(p) for p in files[:limit]]


def run(slice_accept: int, single_accept: int, ucsd_limit: int) -> pd.DataFrame:
    volume = real_volume()
    rng = np.random.default_rng(0)
    units: dict[str, list[str]] = {"V": slice_hashes(volume)}
    kinds: dict[str, str] = {"V": "nifti"}
    positives = {
        "copy": volume,
        "in-plane 256": ndimage.zoom(volume, (1, 0.5, 0.5), order=1, grid_mode=True, mode="nearest"),
        "every 2nd slice": volume[::2],
        "6 contiguous": volume[6:12],
        "noise 15 HU": volume + rng.normal(0, 15, volume.shape).astype(np.float32),
    }
    for name, data in positives.items():
        units[name], kinds[name] = slice_hashes(data), "metaimage"
    for k, plane in enumerate(volume):
        png = Image.fromarray(to_uint8(plane, *LUNG_WINDOW)).resize((256, 256), Image.Resampling.BILINEAR)
        units[f"slice {k} png"], kinds[f"slice {k} png"] = [perceptual_hash(np.asarray(png))], "png"
    # z <= -140 mm and z >= -116 mm: the same patient, levels at least 24 mm apart (neighbouring slices of two
    # series 1-3 mm apart are the same picture by the 2-D definition: distances 2-14 bits, see the docs)
    negatives = {"V lower": slice_hashes(volume[:9]), "V upper": slice_hashes(volume[9:])}
    pictures = ucsd_pictures(ucsd_limit)
    for k, picture in enumerate(pictures):
        units[f"ucsd {k}"], kinds[f"ucsd {k}"] = [perceptual_hash(to_gray(picture))], "png"
    for g in range(len(pictures) // 6):
        group = [np.asarray(Image.fromarray(to_gray(p)).resize((256, 256))) for p in pictures[6 * g : 6 * g + 6]]
        units[f"ucsd volume {g}"] = [perceptual_hash(p) for p in group]
        kinds[f"ucsd volume {g}"] = "metaimage"
    # one manifest row per unit; volume rows read their slice hashes from ``units``
    names = list(units) + list(negatives)
    all_units = {**units, **negatives}
    frame = pd.DataFrame(
        {
            "modality": "ct",
            "format": [kinds.get(n, "metaimage") for n in names],
            "path": [f"datasets/m/{n}" for n in names],
            "phash": [all_units[n][0] if kinds.get(n) == "png" else "" for n in names],
            "source": "m",
            "extra": "{}",
        }
    )
    settings = {"slice_accept": slice_accept, "single_accept": single_accept}
    a, b = volume_edges(frame, lambda i: all_units[names[i]], **settings)
    _check_incremental(frame, names, all_units, (a, b), settings)
    joined = {(names[x], names[y]) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
    partners = {n: {y if x == n else x for x, y in joined if n in (x, y)} for n in names}
    rows = []
    for name in [*positives, *(f"slice {k} png" for k in range(len(volume)))]:
        rows.append(("positive", name, "V" in partners[name]))
    for name in negatives:
        rows.append(("negative (same patient, other levels)", name, bool((partners[name] - {"V"}) & set(negatives))))
    false_ucsd = sum(1 for n in names if n.startswith("ucsd") and partners[n] & ({"V"} | set(positives)))
    ucsd_units = sum(1 for n in names if n.startswith("ucsd"))
    rows.append(("negative (other patients)", f"{ucsd_units} UCSD pictures / pseudo-volumes", false_ucsd))
    table = pd.DataFrame(rows, columns=["case", "unit", "joined"])
    hashes = units["V"]
    usable = [h for h in hashes if h]
    apart = [_ham(a, b) for i, a in enumerate(hashes[:9]) for b in hashes[9:] if a and b]
    other = [
        min(_ham(u[0], h) for h in usable)
        for n, u in units.items()
        if n.startswith("ucsd ") and "volume" not in n and u[0]
    ]
    print(f"slice hashes of V: {len(hashes)} ({len(hashes) - len(usable)} blank, no hash)")
    print(f"same patient, >= 24 mm apart: min distance {min(apart)} bits over {len(apart)} pairs")
    if other:
        print(
            f"other patients (UCSD) to their closest V slice: min {min(other)}, 1st percentile "
            f"{np.percentile(other, 1):.0f}, median {np.median(other):.0f} bits over {len(other)} pictures"
        )
    return table


def _check_incremental(frame, names, all_units, fresh, settings) -> None:
    """The same search as syncs run it: one unit added per sync on the stored slice index of the sync
    before (``manifest/slice_index.py``); the last sync's edges must be the fresh search's."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        for count in range(1, len(names) + 1):
            part = frame.iloc[:count].reset_index(drop=True)
            found = volume_edges(part, lambda i: all_units[names[i]], index_dir=Path(folder), **settings)
    same = all(np.array_equal(x, y) for x, y in zip(found, fresh, strict=True))
    print(f"incremental, one unit per sync over {len(names)} syncs on the stored index: same edges as fresh: {same}")
    if not same:
        raise SystemExit("the index gives other edges than the fresh search")


def _ham(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slice-accept", type=int, default=24)
    parser.add_argument("--single-accept", type=int, default=16)
    parser.add_argument("--ucsd", type=int, default=746)
    args = parser.parse_args()
    print(run(args.slice_accept, args.single_accept, args.ucsd).to_string(index=False))


if __name__ == "__main__":
    main()
