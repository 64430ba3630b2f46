"""Duplicate detection: fingerprints, candidate search, confirmation, and the real cross-source copies.

The expected duplicate pairs on real data are computed here with an independent method
(PIL bilinear 32x32 thumbnails, z-scored, mean squared difference), not with the code under
test, so a regression in the perceptual hash or the thresholds shows up as a set difference.
"""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covid19_images.imaging.fingerprints import PHASH_HEX, perceptual_hash
from covid19_images.imaging.probe import fingerprints
from covid19_images.manifest import duplicates as dedup
from covid19_images.manifest.duplicates import (
    find_duplicates,
    group_pairs,
    hamming,
    near_pairs,
)
from covid19_images.manifest.near_index import hash_bytes, packed_bits, pairs_within
from covid19_images.manifest.reviews import append_review, read_reviews
from covid19_images.testing.mirrors import build_mirror, mirror_path
from tests.conftest import build_synced_root

# --- generated data ---------------------------------------------------------------------------


def smooth_picture(seed: int, shape: tuple[int, int] = (600, 500)) -> np.ndarray:
    """A random smooth grayscale picture: chest-X-ray-like in that it is mostly low frequency."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.normal(size=shape), sigma=18) + 0.15 * gaussian_filter(rng.normal(size=shape), 3)
    field = (field - field.min()) / (field.max() - field.min())
    return (field * 255).astype(np.uint8)


def reencode(pixels: np.ndarray, size: tuple[int, int] | None, quality: int = 75, mode: str = "L") -> np.ndarray:
    image = Image.fromarray(pixels).convert(mode)
    if size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer))


def test_phash_survives_resize_and_reencode_but_separates_different_pictures() -> None:
    """Measured once: these copies move the 256-bit hash by 2 bits, other smooth pictures are
    124-144 bits away. The bounds are literals (8 and 100), not the module's thresholds."""
    original = smooth_picture(1)
    digest = perceptual_hash(original)
    assert len(digest) == 64
    for copy in (
        reencode(original, (400, 300)),
        reencode(original, (224, 224), mode="RGB"),
        reencode(original, None, quality=90),
    ):
        assert hamming(perceptual_hash(copy), digest) <= 8
    others = [perceptual_hash(smooth_picture(seed)) for seed in range(2, 12)]
    assert min(hamming(digest, other) for other in others) >= 100


def test_fingerprints_keep_pixel_hash_and_skip_blank_pictures() -> None:
    gray = smooth_picture(3, (64, 80))
    colour = np.stack([gray] * 3, axis=2)
    assert fingerprints(gray)[0] == fingerprints(colour)[0], "a colour re-save of a gray picture has the same pixels"
    assert fingerprints(gray)[0] != fingerprints(gray.T.copy())[0]
    assert fingerprints(np.zeros((50, 50), np.uint8))[1] == ""
    assert fingerprints(np.full((50, 50), 200, np.uint8))[1] == ""


def random_hash(rng: np.random.Generator) -> str:
    return rng.integers(0, 256, PHASH_HEX // 2, dtype=np.uint8).tobytes().hex()


def with_bits_flipped(value: str, bits: Iterable[int]) -> str:
    """A hex hash with the given bits flipped; bit 0 is the first bit of the first byte (the
    order faiss compares a hash's prefix in)."""
    number = int(value, 16)
    for bit in bits:
        number ^= 1 << (PHASH_HEX * 4 - 1 - int(bit))
    return f"{number:0{PHASH_HEX}x}"


def test_pairs_are_measured_on_the_whole_hash_not_only_the_prefix_faiss_compares() -> None:
    # bits flipped only after the first 20 bytes: equal prefixes, so every pair reaches the
    # full measurement, which alone decides (48 bits kept, 49 and 60 not)
    rng = np.random.default_rng(11)
    base = random_hash(rng)
    tail_bits = range(20 * 8, PHASH_HEX * 4)
    copies = []
    for count in (0, 1, 48, 49, 60):
        copies.append(with_bits_flipped(base, rng.choice(list(tail_bits), size=count, replace=False)))
    hashes = [base, *copies]
    assert all(h[:40] == base[:40] for h in hashes) and [hamming(base, h) for h in copies] == [0, 1, 48, 49, 60]
    found = set(near_pairs(hashes, 48))
    expected = {
        (i, j, hamming(a, b)) for (i, a), (j, b) in itertools.combinations(enumerate(hashes), 2) if hamming(a, b) <= 48
    }
    assert found == expected
    assert (0, 3, 48) in found and not any(j in (4, 5) and i == 0 for i, j, _ in found)


def test_pairs_apart_on_the_prefix_alone_are_kept_up_to_the_radius() -> None:
    """The other edge of the prefix search: bits flipped only in the first 20 bytes, which faiss
    compares (and keeps strictly below the radius it is given), so a pair 48 bits apart there is
    kept and one 49 bits apart is not, with and without queried rows."""
    rng = np.random.default_rng(12)
    base = random_hash(rng)
    copies = []
    for count in (47, 48, 49):
        copies.append(with_bits_flipped(base, rng.choice(20 * 8, size=count, replace=False)))
    hashes = [base, *copies, *(random_hash(rng) for _ in range(20))]
    assert all(h[40:] == base[40:] for h in copies) and [hamming(base, h) for h in copies] == [47, 48, 49]
    expected = [(i, j, hamming(a, b)) for (i, a), (j, b) in itertools.combinations(enumerate(hashes), 2)]
    expected = [pair for pair in expected if pair[2] <= 48]
    assert (0, 1, 47) in expected and (0, 2, 48) in expected and all(p[:2] != (0, 3) for p in expected)
    bits = packed_bits(hashes)
    for queries in (None, np.array([0]), np.array([2, 3])):
        a, b, d = pairs_within(bits, 48, queries, numpy_pairs=0)  # through faiss whatever the number of queries
        asked = [p for p in expected if queries is None or p[0] in queries or p[1] in queries]
        assert list(zip(a.tolist(), b.tolist(), d.tolist(), strict=True)) == asked, queries


#: Run in a fresh interpreter (a test process may itself be a child forked after a search, whose
#: faiss must stay on one thread): search on two OpenMP threads, fork, search again in the child.
#: ``argv[2]`` says who searched before the fork: this project's ``pairs_within``, or other code
#: calling faiss itself while ``near_index`` was only imported.
FORKED_SEARCH = """
import multiprocessing, sys
import faiss, numpy as np
from covid19_images.manifest.near_index import pairs_within

bits = np.load(sys.argv[1])
faiss.omp_set_num_threads(2)  # a pool of OpenMP threads in this process, whatever the machine's cores
if sys.argv[2] == "ours":
    expected = pairs_within(bits, 48)  # no queries: through faiss
else:
    index = faiss.IndexBinaryFlat(bits.shape[1] * 8)
    index.add(bits)
    index.range_search(bits, 48)
context = multiprocessing.get_context("fork")
receiver, sender = context.Pipe(duplex=False)
child = context.Process(target=lambda: sender.send(pairs_within(bits, 48)))
child.start()
sender.close()
if not receiver.poll(60):
    child.kill()
    sys.exit("the forked child's search did not finish in 60 s")
found = receiver.recv()
child.join(10)
if sys.argv[2] != "ours":
    expected = pairs_within(bits, 48)
for mine, theirs in zip(expected, found, strict=True):
    np.testing.assert_array_equal(mine, theirs)
print(len(expected[0]), "pairs, the same in the child")
"""


@pytest.mark.parametrize("searched_by", ["ours", "faiss"])
def test_a_child_forked_after_a_search_can_search_too(tmp_path: Path, searched_by: str) -> None:
    """GNU OpenMP's thread pool does not survive fork (faiss issue #5206): a process forked after a
    faiss search used to wait forever in its own first search, whether the search before the fork
    was this project's or other code's. The child must finish, with the parent's pairs."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("this platform cannot fork")
    rng = np.random.default_rng(5)
    hashes = [random_hash(rng) for _ in range(3000)]
    hashes += [flip_bits(h, int(rng.integers(0, 40)), rng) for h in hashes[:200]]
    np.save(tmp_path / "bits.npy", packed_bits(hashes))
    (tmp_path / "forked_search.py").write_text(FORKED_SEARCH, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(tmp_path / "forked_search.py"), str(tmp_path / "bits.npy"), searched_by],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    pairs = int(run.stdout.split()[0])
    assert pairs >= 200, "the planted copies must give pairs, or this test proves nothing"


def flip_bits(value: str, count: int, rng: np.random.Generator) -> str:
    """``value`` with ``count`` distinct bits flipped, chosen at random."""
    return with_bits_flipped(value, rng.choice(PHASH_HEX * 4, size=count, replace=False))


def test_near_pairs_equals_brute_force_across_tile_edges() -> None:
    rng = np.random.default_rng(7)
    hashes = [random_hash(rng) for _ in range(150)]
    for i in range(0, 150, 5):  # plant near copies at many distances
        hashes.append(flip_bits(hashes[i], int(rng.integers(0, 60)), rng))
    hashes += ["", "abc", hashes[0][:16]]  # blank, malformed and an old 64-bit hash are skipped
    for threshold in (0, 10, 24, 48):
        found = set(near_pairs(hashes, threshold))
        # the same pairs searched in small tiles, so that pairs cross tile edges
        _, packed = hash_bytes(hashes)
        usable = [i for i, h in enumerate(hashes) if len(h) == PHASH_HEX]
        a, b, d = pairs_within(packed, threshold, rows_per_tile=7, cols_per_tile=13)
        assert {(usable[x], usable[y], z) for x, y, z in zip(a.tolist(), b.tolist(), d.tolist(), strict=True)} == found
        expected = {
            (i, j, hamming(a, b))
            for (i, a), (j, b) in itertools.combinations(enumerate(hashes), 2)
            if len(a) == PHASH_HEX and len(b) == PHASH_HEX and hamming(a, b) <= threshold
        }
        assert found == expected
        if threshold >= 24:
            assert len(expected) >= 5, "the planted copies must give pairs, or this test proves nothing"


def frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    base = {"source": "s", "path": "", "sha256": "", "pixel_sha256": "", "phash": "", "format": "png"}
    return pd.DataFrame([{**base, "path": r["image_id"], **r} for r in rows])


def test_exact_duplicates_by_bytes_or_pixels_but_not_blank_pixels() -> None:
    rng = np.random.default_rng(0)
    h = [random_hash(rng) for _ in range(6)]
    manifest = frame(
        [
            {"image_id": "b1", "sha256": "S1", "pixel_sha256": "P1", "phash": h[0]},
            {"image_id": "a1", "sha256": "S1", "pixel_sha256": "P1", "phash": h[0]},
            {"image_id": "c1", "sha256": "S2", "pixel_sha256": "P1", "phash": h[1]},  # same pixels, other bytes
            {"image_id": "d1", "sha256": "S3", "pixel_sha256": "P9", "phash": ""},  # blank
            {"image_id": "e1", "sha256": "S4", "pixel_sha256": "P9", "phash": ""},  # another blank
            {"image_id": "f1", "sha256": "S5", "pixel_sha256": "P5", "phash": h[2]},
        ]
    )
    groups = dict(zip(manifest["image_id"], find_duplicates(manifest).groups, strict=True))
    assert groups["a1"] == groups["b1"] == groups["c1"] == "a1", "group id is the smallest member id"
    assert groups["d1"] == groups["e1"] == groups["f1"] == ""


def test_the_evidence_names_every_edge_in_order_past_exact_and_reviewed_pairs(tmp_path: Path) -> None:
    """What a reviewer reads: each edge with its kind, a near pair already joined by an exact edge
    listed once (as the exact one), a pair reviewed as different apart, and no edge for a review
    naming a file that is gone; every near pair after those is still listed. Near pairs come in
    row order, so the skipped ones come first here."""
    rng = np.random.default_rng(21)
    first, second, third, fourth = (random_hash(rng) for _ in range(4))
    phashes = [
        first,
        flip_bits(first, 10, rng),  # rows 0-1: near, and the same picture by the upstream's word
        second,
        flip_bits(second, 12, rng),  # rows 2-3: near
        third,
        flip_bits(third, 8, rng),  # rows 4-5: near, reviewed as two pictures
        fourth,
        flip_bits(fourth, 5, rng),  # rows 6-7: near
        fourth,  # row 8: the bytes of row 6
    ]
    rows = [
        {"image_id": f"i{k}", "path": f"datasets/s/r{k}.png", "sha256": f"{k + 1:064x}", "phash": phash}
        for k, phash in enumerate(phashes)
    ]
    rows[8]["sha256"] = rows[6]["sha256"]
    rows[0]["extra"] = json.dumps({"same_as": ["s:r1.png"]})
    manifest = frame(rows).fillna({"extra": ""})
    append_review(tmp_path, rows[4]["sha256"], rows[5]["sha256"], "different", reviewer="dr a")
    only_different = find_duplicates(manifest, reviews=read_reviews(tmp_path))
    assert [(e.a, e.b) for e in only_different.overruled] == [(4, 5)]
    # pairs reviewed as the same picture whose other file is no longer here (on either side of
    # the pair's order): no edge
    append_review(tmp_path, rows[2]["sha256"], "f" * 64, "same", reviewer="dr b")
    append_review(tmp_path, "0" * 64, rows[3]["sha256"], "same", reviewer="dr b")
    found = find_duplicates(manifest, reviews=read_reviews(tmp_path))
    assert [(e.a, e.b, e.kind, e.distance) for e in found.edges] == [
        (6, 8, "file", None),
        (0, 1, "identity", None),
        (2, 3, "near", 12),
        (6, 7, "near", 5),
    ]
    assert [(e.a, e.b, e.kind, e.distance) for e in found.overruled] == [(4, 5, "near", 8)]
    assert found.groups.tolist() == ["i0", "i0", "i2", "i2", "", "", "i6", "i6", "i6"]


def test_missing_values_join_nothing() -> None:
    """A hand-made manifest with blanks (None, NaN) where hashes go: blanks are no file, no pixels
    and no picture, so two blank rows are not the same file."""
    rng = np.random.default_rng(31)
    picture = random_hash(rng)
    manifest = frame(
        [
            {"image_id": "a", "sha256": None, "pixel_sha256": None, "phash": None},
            {"image_id": "b", "sha256": np.nan, "pixel_sha256": np.nan, "phash": np.nan},
            {"image_id": "c", "sha256": "1" * 64, "pixel_sha256": None, "phash": picture},
            {"image_id": "d", "sha256": "1" * 64, "pixel_sha256": None, "phash": picture},
        ]
    )
    found = find_duplicates(manifest)
    assert found.groups.tolist() == ["", "", "c", "c"]
    assert [(e.a, e.b, e.kind) for e in found.edges] == [(2, 3, "file")]


def test_few_queries_against_more_columns_than_one_tile_find_every_pair() -> None:
    """numpy measures a few queried rows against the index a tile of 65,536 columns at a time: a
    partner past the first tile is found at its own row number, as faiss finds it."""
    rng = np.random.default_rng(33)
    bits = rng.integers(0, 256, size=(70_000, 32), dtype=np.uint8)
    partners = {5: 69_001, 40_000: 66_000, 69_500: 12}
    for query, partner in partners.items():
        bits[partner] = bits[query]
        flip = rng.choice(256, size=9, replace=False)
        bits[partner, flip // 8] ^= (1 << (flip % 8)).astype(np.uint8)
    queries = np.array(sorted(partners))
    quick = pairs_within(bits, 24, queries)  # 3 x 70,000 pairs: numpy
    slow = pairs_within(bits, 24, queries, numpy_pairs=0)
    found = list(zip(*(part.tolist() for part in quick), strict=True))
    assert found == list(zip(*(part.tolist() for part in slow), strict=True))
    assert {(a, b) for a, b, _d in found} == {tuple(sorted(pair)) for pair in partners.items()}


def thumbnails_apart(mse: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two z-scored-like 64x64 thumbnails whose mean squared difference is exactly ``mse``."""
    rng = np.random.default_rng(seed)
    thumb = rng.normal(size=(64, 64))
    noise = rng.normal(size=(64, 64))
    noise *= np.sqrt(mse / np.mean(noise**2))
    return thumb.astype(np.float32), (thumb + noise).astype(np.float32)


def joined(distance: int, mse: float | None) -> bool:
    """Are two rows whose hashes differ in ``distance`` bits and whose thumbnails differ by ``mse``
    one duplicate group? ``mse=None``: the files are not at hand."""
    rng = np.random.default_rng(distance)
    base = random_hash(rng)
    manifest = frame(
        [
            {"image_id": "x", "sha256": "1", "pixel_sha256": "1", "phash": base},
            {"image_id": "y", "sha256": "2", "pixel_sha256": "2", "phash": flip_bits(base, distance, rng)},
        ]
    )
    if mse is None:
        result = find_duplicates(manifest)
    else:
        pair = thumbnails_apart(mse, distance)
        result = find_duplicates(manifest, thumbnails=lambda position: pair[position])
    assert result.groups.tolist() in (["x", "x"], ["", ""])
    return result.groups.tolist() == ["x", "x"]


# Literal thresholds from docs/dedup-threshold.md: <= 24 bits is the same picture whatever the
# pixels; 25-48 bits only with thumbnails within MSE 0.08 (same-picture copies measured up to
# 0.045, different pictures from 0.168); beyond 48 bits never, however alike the pixels.
@pytest.mark.parametrize(
    ("distance", "mse", "expected"),
    [
        (0, 2.0, True),
        (24, 2.0, True),  # unrelated pixels (MSE about 2): the hash alone decides
        (24, None, True),
        (25, 2.0, False),
        (25, 0.0, True),
        (25, None, False),  # no files: a candidate stays unconfirmed
        (36, 0.045, True),
        (36, 0.15, False),
        (48, 0.0, True),
        (48, 0.168, False),
        (49, 0.0, False),
        (60, 0.0, False),
    ],
)
def test_near_pairs_are_joined_by_the_documented_thresholds(distance: int, mse: float | None, expected: bool) -> None:
    assert joined(distance, mse) is expected


def test_candidate_evidence_names_the_pair() -> None:
    rng = np.random.default_rng(1)
    base = random_hash(rng)
    manifest = frame(
        [
            {"image_id": "x", "sha256": "1", "pixel_sha256": "1", "phash": base},
            {"image_id": "y", "sha256": "2", "pixel_sha256": "2", "phash": flip_bits(base, 10, rng)},
            {"image_id": "z", "sha256": "3", "pixel_sha256": "3", "phash": flip_bits(base, 36, rng)},
        ]
    )
    same, other = thumbnails_apart(1.5, 4)
    confirmed = find_duplicates(manifest, thumbnails=lambda position: same)
    assert confirmed.groups.tolist() == ["x", "x", "x"]
    assert {(e.a, e.b) for e in confirmed.edges if e.mse is not None} >= {(0, 2)}
    assert (0, 1) in {(e.a, e.b) for e in confirmed.edges if e.mse is None}, "a sure pair needs no pixels"
    different = find_duplicates(manifest, thumbnails=lambda position: other if position == 2 else same)
    assert different.groups.tolist() == ["x", "x", ""]
    assert (0, 2) in {(e.a, e.b) for e in different.rejected}
    blind = find_duplicates(manifest)
    assert blind.groups.tolist() == ["x", "x", ""]
    assert (0, 2) in {(e.a, e.b) for e in blind.unconfirmed}


# --- real samples ---------------------------------------------------------------------------

SOURCES = ("ieee8023-covid-chestxray", "zhanglab-pediatric-xray", "darshan-xray")
DARSHAN_SAMPLE = "coyotespike-covid19-detection-xray-dataset"
TRUTH_MSE = 0.1


def darshan_copy(original: Path, target: Path, *, size: tuple[int, int] = (400, 300), mode: str = "L") -> None:
    """What Darshan's pipeline did to ieee8023 and Zhang Lab pictures: squash to 400x300, gray JPEG q75."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(original) as image:
        image.convert(mode).resize(size, Image.Resampling.BILINEAR).save(target, "JPEG", quality=75)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, mirrors: Path, shared: Path, registry) -> dict:
    """A root of ieee8023 + Zhang Lab + Darshan, where Darshan's snapshot also holds resized copies
    of real ieee8023 and Zhang Lab sample pictures (the real samples share no picture)."""
    base = tmp_path_factory.mktemp("dedup-planted")
    mirror_root = base / "mirrors"
    for name in SOURCES[:2]:
        source = mirror_path(mirrors, registry[name].url)
        shutil.copytree(source, mirror_path(mirror_root, registry[name].url), symlinks=True)
    snapshot = base / "darshan-snapshot"
    shutil.copytree(shared / DARSHAN_SAMPLE, snapshot)
    ieee = sorted((shared / "ieee8023-covid-chestxray-dataset" / "images").glob("*.jp*g"))[:3]
    zhang = sorted((shared / "zhanglab-kermany-chest-xray" / "train" / "PNEUMONIA").glob("*.jpeg"))[:3]
    folder = snapshot / "covid19-detection-xray-dataset" / "NonAugmentedTrain"
    planted_copies = {}
    for index, original in enumerate(ieee):
        target = folder / "COVID-19" / f"{9000 + index}.jpeg"
        darshan_copy(original, target)
        planted_copies[target.relative_to(snapshot).as_posix()] = original.name
    for index, original in enumerate(zhang):
        target = folder / "BacterialPneumonia" / f"{9000 + index}.jpeg"
        darshan_copy(original, target, size=(224, 224), mode="RGB") if index == 0 else darshan_copy(original, target)
        planted_copies[target.relative_to(snapshot).as_posix()] = original.name
    build_mirror(mirror_path(mirror_root, registry["darshan-xray"].url), [snapshot])
    root = build_synced_root(base, mirror_root, SOURCES)
    from covid19_images.manifest.build import read_manifest

    return {"root": root, "manifest": read_manifest(root), "planted": planted_copies}


def independent_thumbnail(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        small = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64)
    return (small - small.mean()) / (small.std() + 1e-9)


def truth_pairs(root: Path, manifest: pd.DataFrame) -> set[frozenset[str]]:
    thumbs = {row.image_id: independent_thumbnail(root / row.path) for row in manifest.itertuples()}
    return {
        frozenset((a, b))
        for a, b in itertools.combinations(sorted(thumbs), 2)
        if np.mean((thumbs[a] - thumbs[b]) ** 2) < TRUTH_MSE
    }


@pytest.mark.upstream
def test_dup_groups_equal_pixel_ground_truth_on_real_samples(planted: dict) -> None:
    manifest = planted["manifest"]
    expected = truth_pairs(planted["root"], manifest)
    pairs = group_pairs(manifest)
    found = {frozenset((a, b)) for a, b in zip(pairs["image_id_a"], pairs["image_id_b"], strict=True)}
    assert found == expected
    by_id = manifest.set_index("image_id")["source"]
    cross = {p for p in expected if len({by_id[i] for i in p}) == 2}
    assert len(cross) == len(planted["planted"]), "every planted copy, and nothing else, pairs across sources"


@pytest.mark.upstream
def test_every_darshan_copy_joins_its_original(planted: dict) -> None:
    manifest = planted["manifest"]
    names = manifest["path"].map(lambda p: Path(p).name)
    for relative, original_name in planted["planted"].items():
        copy = manifest[manifest["path"].str.endswith(relative)]
        original = manifest[(names == original_name) & (manifest["source"] != "darshan-xray")]
        assert len(copy) == 1 and len(original) == 1, relative
        assert copy["dup_group"].item() != ""
        assert copy["dup_group"].item() == original["dup_group"].item()
        assert copy["split"].item() == original["split"].item(), "a copy and its original share a split"


@pytest.mark.upstream
def test_confirmation_rejects_nothing_real_and_report_edges_name_both_sides(planted: dict) -> None:
    result = find_duplicates(planted["manifest"], planted["root"])
    assert result.rejected == [] and result.unconfirmed == []
    table = dedup.edge_table(planted["manifest"], result.edges)
    assert set(table["kind"]) <= {"file", "pixels", "near"}
    assert (table["source_a"] != table["source_b"]).sum() == len(planted["planted"])
