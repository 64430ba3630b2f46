"""3-D duplicate search for CT: a volume that is a copy, a resample or a subset of slices of another.

The 2-D search (:mod:`covid19_images.manifest.duplicates`) sees one perceptual hash per row: a
DICOM slice's own, but only the *middle* slice of a NIfTI or MetaImage volume. A MosMed study
(every 10th slice of a series), COVIDx CT's PNG slices of STOIC, MosMed or Zenodo 3757476, or a
volume resampled to another grid therefore never met its original. Here every slice of every
volume row is hashed the way 2-D pictures are (display orientation, lung window, the 256-bit
DCT hash of :mod:`covid19_images.imaging.fingerprints`), and searched exactly against every CT
hash of the manifest (volume slices, DICOM slices, PNG/JPEG slices) with
:func:`~covid19_images.manifest.slice_index.slice_pairs` (faiss range search; the pairs found are
kept between syncs, so a sync searches only the slices it has not seen against the others):

* a **unit** is a volume row (its slices), a DICOM series (its rows, grouped by series UID and
  folder as the volume loader groups them) or a single CT picture;
* a unit A is **held** by a unit B when at least :data:`MIN_HELD` of A's slices have a slice of B
  within :data:`SLICE_ACCEPT` bits, and the matched slices of B run in A's order (a subset or a
  resample keeps the order along z; chance matches between two patients scatter). A single
  picture is held by a volume when one of its slices is within :data:`SINGLE_ACCEPT` bits (one
  slice has no order to check, so its threshold is stricter);
* a held unit joins the holder's duplicate group: a volume row by one edge to the volume row, a
  DICOM series slice by slice (each matched slice to its match), so the 2-D loader still serves
  the slices one by one and the volume loader drops the copy.

Thresholds and the false positive / negative rates measured on real CT are in
``docs/dedup-threshold.md`` (``scripts/measure_volume_dedup.py``). Slice hashes are cached per file
content (``sha256``) in ``<git dir>/covid19-images-cache/volume-hashes/``, so a sync hashes only
volumes it has not seen; the slice pairs in ``.../volume-index/``, so it searches only their slices.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from covid19_images.core.schema import parse_extra
from covid19_images.imaging.decoded import LUNG_WINDOW, to_uint8
from covid19_images.imaging.fingerprints import perceptual_hash, to_gray
from covid19_images.manifest.slice_index import SliceIndex, slice_pairs

#: Hamming distance of two slice hashes that count as the same slice inside a volume match
SLICE_ACCEPT = 24
#: stricter, for a lone picture against a volume (no slice order to confirm it)
SINGLE_ACCEPT = 16
#: share of a unit's slices that must be found, in order, in the holder
MIN_HELD = 0.8
VOLUME_FORMATS = ("nifti", "metaimage")


def slice_hashes(volume: np.ndarray) -> list[str]:
    """The perceptual hash of every slice of a ``(z, y, x)`` HU volume, lung-windowed as a 2-D CT slice."""
    return [perceptual_hash(to_gray(to_uint8(plane, *LUNG_WINDOW))) for plane in volume]


def read_volume_hashes(path: Path, fmt: str) -> list[str]:
    """Slice hashes of a NIfTI or MetaImage file, in the volume loader's display orientation."""
    if fmt == "metaimage":
        from covid19_images.imaging.metaimage import read_volume

        volume, _ = read_volume(path)
    else:
        import nibabel

        from covid19_images.imaging.budget import check_frame_pixels, check_frames
        from covid19_images.imaging.decode import _display_slice

        image = nibabel.load(str(path))
        shape = image.shape
        check_frame_pixels(shape[0], shape[1], "NIfTI volume")
        check_frames(shape[2] if len(shape) >= 3 else 1, "NIfTI volume")
        planes = [
            _display_slice(
                np.asarray(image.dataobj[:, :, k] if len(shape) >= 3 else image.dataobj, np.float32), image.affine
            )
            for k in range(shape[2] if len(shape) >= 3 else 1)
        ]  # fmt: skip  (the volume loader's orientation, slice by slice: bounded memory)
        volume = np.stack(planes)
    return slice_hashes(volume)


HashReader = Callable[[int], list[str]]


def cached_reader(root: Path, manifest: pd.DataFrame, cache: Path | None = None) -> HashReader:
    """Slice hashes of manifest row ``i``, cached by content (``sha256``) under ``cache``."""
    folder = cache or _git_cache(root)

    def read(position: int) -> list[str]:
        row = manifest.iloc[position]
        stored = folder / f"{row['sha256']}.txt" if folder is not None and row.get("sha256") else None
        if stored is not None and stored.is_file():
            return stored.read_text().split()
        hashes = read_volume_hashes(root / str(row["path"]), str(row["format"]))
        if stored is not None:
            from covid19_images.core.atomic import write_atomic

            stored.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(stored, "\n".join(hashes).encode())
        return hashes

    return read


def _git_cache(root: Path, folder: str = "volume-hashes") -> Path | None:
    git = root / ".git"
    return git / "covid19-images-cache" / folder if git.is_dir() else None


def index_folder(root: Path) -> Path | None:
    """Where the slice pairs of the last sync are kept (:mod:`covid19_images.manifest.slice_index`)."""
    return _git_cache(root, "volume-index")


def units_of(manifest: pd.DataFrame) -> list[list[int]]:
    """CT rows grouped into units: one per volume row or single picture, one per DICOM series."""
    ct = manifest.index[manifest["modality"].astype(str) == "ct"] if "modality" in manifest else []
    positions = {index: position for position, index in enumerate(manifest.index)}
    series: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    units: list[list[int]] = []
    for index in ct:
        position = positions[index]
        row = manifest.loc[index]
        if str(row["format"]) == "dicom":
            uid = str(parse_extra(row.get("extra", "")).get("series_uid") or f"path:{row['path']}")
            series[(str(row["source"]), uid, str(Path(str(row["path"])).parent))].append(position)
        else:
            units.append([position])
    return units + list(series.values())


def volume_edges(
    manifest: pd.DataFrame,
    read_hashes: HashReader,
    *,
    slice_accept: int = SLICE_ACCEPT,
    single_accept: int = SINGLE_ACCEPT,
    min_held: float = MIN_HELD,
    index_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(row, row)`` edges joining every held unit to its holder (see the module docstring).

    With ``index_dir``, the slice pairs found by the last call are read from there (only slices
    not searched then are searched now) and this call's are written back.
    """
    units = units_of(manifest)
    formats = manifest["format"].astype(str).to_numpy()
    phashes = manifest["phash"].astype(str).to_numpy() if "phash" in manifest else np.array([""] * len(manifest))
    if not any(formats[u[0]] in VOLUME_FORMATS for u in units):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    hashes: list[str] = []
    unit_of: list[int] = []  # slice -> unit number
    rank: list[int] = []  # slice -> its position along the unit (z order for volumes, row order for series)
    row_of: list[int] = []  # slice -> manifest row
    for number, unit in enumerate(units):
        if formats[unit[0]] in VOLUME_FORMATS:
            try:
                found = read_hashes(unit[0])
            except Exception:  # noqa: BLE001 - an unreadable volume was reported by the probe; it just has no 3-D edges
                found = []
            pairs = [(h, unit[0]) for h in found]
        else:
            pairs = [(str(phashes[p]), p) for p in unit]
        for k, (value, row) in enumerate(pairs):
            if len(value) == 64:
                hashes.append(value)
                unit_of.append(number)
                rank.append(k)
                row_of.append(row)
    if len(hashes) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    stored = SliceIndex.load(index_dir, slice_accept) if index_dir is not None else None
    a, b, distance, index = slice_pairs(hashes, slice_accept, stored)
    if index_dir is not None:
        with contextlib.suppress(OSError):  # a read-only git folder: the next sync searches afresh
            index.save(index_dir)
    units_arr, rank_arr, rows_arr = np.asarray(unit_of), np.asarray(rank), np.asarray(row_of)
    cross = units_arr[a] != units_arr[b]
    a, b, distance = a[cross], b[cross], distance[cross]
    sizes = np.bincount(units_arr, minlength=len(units))
    # for each (held unit, holder unit): held slice -> (distance, holder slice), the closest match
    best: dict[tuple[int, int], dict[int, tuple[int, int]]] = defaultdict(dict)
    for x, y, d in zip(a.tolist(), b.tolist(), distance.tolist(), strict=True):
        for held, holder in ((x, y), (y, x)):
            key = (int(units_arr[held]), int(units_arr[holder]))
            if key[0] == key[1]:
                continue
            previous = best[key].get(held)
            if previous is None or (d, holder) < previous:
                best[key][held] = (d, holder)
    edge_a: list[int] = []
    edge_b: list[int] = []
    for (held_unit, holder_unit), matches in best.items():
        size = int(sizes[held_unit])
        if size == 1:
            ((held, (d, holder)),) = matches.items()
            if d > single_accept or formats[units[holder_unit][0]] not in VOLUME_FORMATS:
                continue  # picture vs picture is the 2-D search's job
        elif len(matches) < min_held * size:
            continue
        elif _both_volumes(formats, units[held_unit], units[holder_unit]) and not _in_order(matches, rank_arr):
            continue  # z ranks are known for volumes only (a DICOM series' rows are in name order)
        for held, (_d, holder) in matches.items():
            x, y = int(rows_arr[held]), int(rows_arr[holder])
            if x != y:
                edge_a.append(min(x, y))
                edge_b.append(max(x, y))
    if not edge_a:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pairs_found = np.unique(np.column_stack((edge_a, edge_b)), axis=0)
    return pairs_found[:, 0].astype(np.int64), pairs_found[:, 1].astype(np.int64)


def _both_volumes(formats: np.ndarray, one: list[int], other: list[int]) -> bool:
    return formats[one[0]] in VOLUME_FORMATS and formats[other[0]] in VOLUME_FORMATS


def _in_order(matches: dict[int, tuple[int, int]], rank: np.ndarray) -> bool:
    """The holder's matched slices run in the held unit's order, one way or the other (z may be flipped)."""
    ordered = [int(rank[holder]) for held, (_d, holder) in sorted(matches.items(), key=lambda m: rank[m[0]])]
    steps = np.diff(ordered)
    if not len(steps):
        return True
    return bool((steps >= 0).mean() >= 0.9 or (steps <= 0).mean() >= 0.9)
