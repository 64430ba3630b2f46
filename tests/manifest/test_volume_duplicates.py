"""The 3-D duplicate search: a copy, a resample or a subset of slices of a CT volume joins its group; other levels
of the same patient and other patients do not. Real CT from ../shared/upstream (skipped without it)."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage

from covid19_images.manifest.duplicates import find_duplicates
from covid19_images.manifest.volume_duplicates import slice_hashes, volume_edges

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
POS_CASE = Path(__file__).resolve().parents[3] / "shared/upstream/coyotespike-covid-19-pos-case/COVID-19-pos-case"
needs_real_ct = pytest.mark.skipif(not POS_CASE.is_dir(), reason=f"no real CT at {POS_CASE}")


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    sys.path.insert(0, str(SCRIPTS))
    try:
        from measure_volume_dedup import real_volume
    finally:
        sys.path.remove(str(SCRIPTS))
    return real_volume()


def frame_of(units: dict[str, tuple[str, list[str]]]) -> pd.DataFrame:
    names = list(units)
    return pd.DataFrame(
        {
            "modality": "ct",
            "format": [units[n][0] for n in names],
            "path": [f"datasets/s/{n}" for n in names],
            "phash": [units[n][1][0] if units[n][0] == "png" else "" for n in names],
            "source": "s",
            "extra": "{}",
        }
    )


def joined(units: dict[str, tuple[str, list[str]]]) -> set[frozenset[str]]:
    names = list(units)
    a, b = volume_edges(frame_of(units), lambda i: units[names[i]][1])
    return {frozenset((names[x], names[y])) for x, y in zip(a.tolist(), b.tolist(), strict=True)}


@needs_real_ct
def test_copies_resamples_and_subsets_join_the_volume(volume: np.ndarray) -> None:
    units = {
        "V": ("nifti", slice_hashes(volume)),
        "copy": ("metaimage", slice_hashes(volume.copy())),
        "256": (
            "metaimage",
            slice_hashes(ndimage.zoom(volume, (1, 0.5, 0.5), order=1, grid_mode=True, mode="nearest")),
        ),
        "every 2nd": ("nifti", slice_hashes(volume[::2])),
        "6 contiguous": ("nifti", slice_hashes(volume[6:12])),
    }
    found = joined(units)
    for name in ("copy", "256", "every 2nd", "6 contiguous"):
        assert frozenset(("V", name)) in found, name


@needs_real_ct
def test_other_levels_of_the_same_patient_stay_apart(volume: np.ndarray) -> None:
    # z <= -140 mm against z >= -116 mm: 24 mm or more apart (docs/dedup-threshold.md)
    units = {"lower": ("nifti", slice_hashes(volume[:9])), "upper": ("metaimage", slice_hashes(volume[9:]))}
    assert joined(units) == set()


@needs_real_ct
def test_a_shuffled_copy_is_not_a_subset_but_a_lone_slice_is_held(volume: np.ndarray) -> None:
    """Order matters between volumes (chance matches scatter); a single picture has no order, only its slice."""
    from PIL import Image

    from covid19_images.imaging.decoded import LUNG_WINDOW, to_uint8
    from covid19_images.imaging.fingerprints import perceptual_hash

    hashes = slice_hashes(volume)
    usable = [k for k, h in enumerate(hashes) if h]
    shuffled = [hashes[k] for k in np.random.default_rng(1).permutation(usable)]
    png = Image.fromarray(to_uint8(volume[usable[3]], *LUNG_WINDOW)).resize((256, 256))
    units = {
        "V": ("nifti", hashes),
        "shuffled": ("metaimage", shuffled),
        "slice": ("png", [perceptual_hash(np.asarray(png))]),
    }
    found = joined(units)
    assert frozenset(("V", "shuffled")) not in found
    assert frozenset(("V", "slice")) in found


def test_find_duplicates_reads_the_volumes_and_groups_a_subset_with_its_original(tmp_path: Path) -> None:
    """Through the manifest's own search: a NIfTI volume and a MetaImage holding every other of its slices."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:64, :64]
    planes = []
    for k in range(10):  # ten distinct levels: blobs move and grow along z
        body = ((yy - 32) ** 2 + (xx - 32) ** 2 < 28**2) * 900.0 - 1000
        lung = ((yy - 30 - k) ** 2 / 40 + (xx - 20 - 2 * k) ** 2 / (20 + 8 * k) < 12) * -700.0
        planes.append(body + lung + rng.normal(0, 10, (64, 64)))
    volume = np.stack(planes).astype(np.int16)  # (z, y, x)
    folder = tmp_path / "datasets/s"
    folder.mkdir(parents=True)
    # NIfTI (x, y, z) oriented so that the loader's display slice is the (y, x) plane as written
    nibabel.save(nibabel.Nifti1Image(np.transpose(volume, (2, 1, 0))[::-1, ::-1], np.eye(4)), folder / "v.nii.gz")
    sitk.WriteImage(sitk.GetImageFromArray(volume[::2]), str(folder / "sub.mha"))
    sitk.WriteImage(sitk.GetImageFromArray(volume[[8, 0, 4]]), str(folder / "other.mha"))
    manifest = pd.DataFrame(
        {
            "image_id": ["a", "b", "c"],
            "source": "s",
            "path": ["datasets/s/v.nii.gz", "datasets/s/sub.mha", "datasets/s/other.mha"],
            "modality": "ct",
            "format": ["nifti", "metaimage", "metaimage"],
            "sha256": ["1" * 64, "2" * 64, "3" * 64],
            "pixel_sha256": ["4" * 64, "5" * 64, "6" * 64],
            "phash": "",
            "extra": "{}",
        }
    )
    found = find_duplicates(manifest, tmp_path)
    kinds = {(e.a, e.b): e.kind for e in found.edges}
    assert kinds.get((0, 1)) == "volume"
    assert found.groups.iloc[0] == found.groups.iloc[1] == "a"
    # three of its slices out of order (8, 0, 4) are in the volume, but not as a subset or resample of it
    assert found.groups.iloc[2] == ""
