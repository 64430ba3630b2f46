"""The 3-D search's slice pairs on a stored index: the same pairs as an all-pairs XOR/popcount, whether
searched afresh or on the index of an earlier sync; a sync that adds one series searches only its slices.

Real CT (../shared/upstream, skipped without it) and synthetic hashes with equal values and planted
near copies on both sides of the radius."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from covid19_images.manifest.slice_index import SliceIndex, slice_pairs
from covid19_images.manifest.volume_duplicates import SLICE_ACCEPT, slice_hashes, volume_edges

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
POS_CASE = Path(__file__).resolve().parents[3] / "shared/upstream/coyotespike-covid-19-pos-case/COVID-19-pos-case"
needs_real_ct = pytest.mark.skipif(not POS_CASE.is_dir(), reason=f"no real CT at {POS_CASE}")


def brute_force(hashes: list[str], radius: int) -> set[tuple[int, int, int]]:
    """Every pair of positions within ``radius`` bits, by XOR and popcount over all pairs (the old search)."""
    bits = np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.uint8).reshape(len(hashes), 32)
    found = set()
    for a in range(len(hashes)):
        distance = np.bitwise_count(bits[a] ^ bits[a + 1 :]).sum(axis=1)
        found |= {(a, a + 1 + int(k), int(distance[k])) for k in np.flatnonzero(distance <= radius)}
    return found


def as_set(a: np.ndarray, b: np.ndarray, d: np.ndarray) -> set[tuple[int, int, int]]:
    return set(zip(a.tolist(), b.tolist(), d.tolist(), strict=True))


def synthetic(count: int, seed: int = 5) -> list[str]:
    """Random hashes, every 7th a near copy (0-40 bits flipped) of another, every 11th an exact repeat."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 256, size=(count, 32), dtype=np.uint8)
    unpacked = np.unpackbits(bits, axis=1)
    for row in range(7, count, 7):
        unpacked[row] = unpacked[rng.integers(0, row)]
        unpacked[row, rng.choice(256, size=int(rng.integers(0, 41)), replace=False)] ^= 1
    for row in range(11, count, 11):
        unpacked[row] = unpacked[rng.integers(0, row)]
    return [bytes(row).hex() for row in np.packbits(unpacked, axis=1)]


@pytest.fixture(scope="module")
def real_hashes() -> dict[str, list[str]]:
    sys.path.insert(0, str(SCRIPTS))
    try:
        from measure_volume_dedup import real_volume
    finally:
        sys.path.remove(str(SCRIPTS))
    volume = real_volume()
    return {
        "V": slice_hashes(volume),
        "copy": slice_hashes(volume.copy()),
        "256": slice_hashes(ndimage.zoom(volume, (1, 0.5, 0.5), order=1, grid_mode=True, mode="nearest")),
        "every 2nd": slice_hashes(volume[::2]),
        "6 contiguous": slice_hashes(volume[6:12]),
        "noisy": slice_hashes(volume + np.random.default_rng(2).normal(0, 15, volume.shape).astype(np.float32)),
    }


def test_synthetic_pairs_equal_the_all_pairs_search_fresh_and_incremental(tmp_path: Path) -> None:
    hashes = synthetic(900)
    expected = brute_force(hashes, SLICE_ACCEPT)
    assert len(expected) > 150 and any(d == 0 for _a, _b, d in expected)  # near copies and exact repeats
    *fresh, rebuilt = slice_pairs(hashes, SLICE_ACCEPT)
    assert as_set(*fresh) == expected and rebuilt.searched == len(set(hashes))
    # an earlier sync saw 850 of them (one series fewer): the stored index, saved and read back
    slice_pairs(hashes[:850], SLICE_ACCEPT)[3].save(tmp_path)
    stored = SliceIndex.load(tmp_path, SLICE_ACCEPT)
    assert stored is not None
    *incremental, index = slice_pairs(hashes, SLICE_ACCEPT, stored)
    assert as_set(*incremental) == expected
    assert index.searched == len(set(hashes[850:]) - set(hashes[:850]))  # only the new series' slices
    assert np.array_equal(index.hashes, rebuilt.hashes) and np.array_equal(index.pairs, rebuilt.pairs)
    # a sync that removed a series: pairs with its slices go; nothing needs searching
    *smaller, shrunk = slice_pairs(hashes[100:], SLICE_ACCEPT, index)
    assert as_set(*smaller) == brute_force(hashes[100:], SLICE_ACCEPT) and shrunk.searched == 0


def test_a_stored_index_of_another_radius_or_damaged_is_not_used(tmp_path: Path) -> None:
    hashes = synthetic(300)
    index = slice_pairs(hashes, SLICE_ACCEPT)[3]
    assert len(index.pairs) > 10
    index.save(tmp_path)
    assert SliceIndex.load(tmp_path, SLICE_ACCEPT + 1) is None
    wrong = index.pairs.copy()
    wrong[0, 2] += 1  # a distance that is not the distance of its two hashes
    SliceIndex(index.hashes, wrong, SLICE_ACCEPT).save(tmp_path)
    assert SliceIndex.load(tmp_path, SLICE_ACCEPT) is None
    SliceIndex(index.hashes, index.pairs[1:], SLICE_ACCEPT).save(tmp_path)
    assert SliceIndex.load(tmp_path, SLICE_ACCEPT) is not None  # a missing pair cannot be seen cheaply
    (tmp_path / "slice-pairs.npy").write_bytes(b"torn")
    assert SliceIndex.load(tmp_path, SLICE_ACCEPT) is None


@needs_real_ct
def test_real_ct_pairs_equal_the_all_pairs_search(real_hashes: dict[str, list[str]], tmp_path: Path) -> None:
    hashes = [h for name in real_hashes for h in real_hashes[name] if len(h) == 64]
    expected = brute_force(hashes, SLICE_ACCEPT)
    assert as_set(*slice_pairs(hashes, SLICE_ACCEPT)[:3]) == expected
    held = len(hashes) - len(real_hashes["noisy"])
    stored = slice_pairs(hashes[:held], SLICE_ACCEPT)[3]
    *incremental, index = slice_pairs(hashes, SLICE_ACCEPT, stored)
    assert as_set(*incremental) == expected and index.searched == len(set(hashes[held:]) - set(hashes[:held]))


def units_frame(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "modality": "ct",
            "format": "nifti",
            "path": [f"datasets/s/{n}.nii.gz" for n in names],
            "phash": "",
            "source": "s",
            "extra": "{}",
        }
    )


@needs_real_ct
def test_volume_edges_on_the_index_equal_a_fresh_search_after_adding_a_series(
    real_hashes: dict[str, list[str]], tmp_path: Path
) -> None:
    names = list(real_hashes)
    fresh = volume_edges(units_frame(names), lambda i: real_hashes[names[i]])
    assert {(names[a], names[b]) for a, b in zip(*fresh, strict=True)} >= {("V", n) for n in names[1:]}
    earlier = names[:-1]  # the sync before: the noisy copy not there yet
    volume_edges(units_frame(earlier), lambda i: real_hashes[earlier[i]], index_dir=tmp_path)
    incremental = volume_edges(units_frame(names), lambda i: real_hashes[names[i]], index_dir=tmp_path)
    assert all(np.array_equal(x, y) for x, y in zip(fresh, incremental, strict=True))
    stored = SliceIndex.load(tmp_path, SLICE_ACCEPT)
    assert stored is not None and len(stored.hashes) == len({h for n in names for h in real_hashes[n] if h})
