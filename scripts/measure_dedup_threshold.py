"""Measure the near-duplicate thresholds of covid19_images.manifest.duplicates on the real upstream samples.

Run: ``.venv/bin/python scripts/measure_dedup_threshold.py [--shared ../shared/upstream] [--timing]``.
Writes nothing; prints the tables quoted in docs/dedup-threshold.md.

Ground truth is independent of the perceptual hash: two pictures are "the same" when the
mean squared difference of their z-scored 64x64 thumbnails is below 0.05 (the pixel check
of torchxrayvision's RSNA<->NIH matcher, on a normalised scale). Positives that the samples
lack (they hold no cross-source copy) are made from every real sample picture with the
transformations redistributors apply: Darshan's 400x300 grayscale JPEG q75, 224x224 RGB
JPEG, JPEG re-encode, halving, gamma + downscale, and a 3% border crop (reported apart).
"""

from __future__ import annotations

import argparse
import io
import itertools
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from covid19_images.imaging import fingerprints as fingerprints_lib
from covid19_images.imaging.decode import decode_file
from covid19_images.imaging.formats import IMAGE_FORMATS, VIDEO_FORMATS, read_head, sniff_format
from covid19_images.imaging.probe import fingerprints, probe_file
from covid19_images.manifest import duplicates as dedup
from covid19_images.testing.mirrors import default_shared

SKIP_PARTS = ("annotations", "pocovidscreen")
TRUTH_MSE = 0.05


def sample_files(shared: Path) -> list[Path]:
    """Every decodable picture of the samples (images, DICOM, video), not masks or web assets."""
    found = []
    for path in sorted(shared.rglob("*")):
        if not path.is_file() or any(part in SKIP_PARTS for part in path.parts):
            continue
        fmt = sniff_format(read_head(path))
        if fmt in IMAGE_FORMATS or fmt in VIDEO_FORMATS or fmt == "dicom":
            found.append(path)
    return found


def _encode(image: Image.Image, fmt: str, **options) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("L"))


def transforms(gray: np.ndarray) -> dict[str, np.ndarray]:
    image = Image.fromarray(gray)
    w, h = image.size
    scale = 512 / max(w, h)
    gamma = (255 * (np.asarray(image, dtype=np.float32) / 255) ** 0.8).astype(np.uint8)
    cx, cy = int(w * 0.03), int(h * 0.03)
    return {
        "darshan 400x300 L q75": _encode(image.resize((400, 300), Image.Resampling.BILINEAR), "JPEG", quality=75),
        "224x224 RGB q75": _encode(
            image.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR), "JPEG", quality=75
        ),
        "JPEG q85 same size": _encode(image, "JPEG", quality=85),
        "half size PNG": _encode(image.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS), "PNG"),
        "gamma 0.8 + 512px q90": _encode(
            Image.fromarray(gamma).resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.BILINEAR),
            "JPEG",
            quality=90,
        ),
        "crop 3% borders (stress)": _encode(image.crop((cx, cy, w - cx, h - cy)), "JPEG", quality=90),
    }


def measure(shared: Path) -> None:
    files = sample_files(shared)
    gray = {}
    for path in files:
        gray[path] = fingerprints_lib.to_gray(decode_file(path, frame=None).pixels)
    names = [p for p in files if fingerprints_lib.phash_of_thumbnail(fingerprints_lib.normalised_thumbnail(gray[p]))]
    thumbs = {p: fingerprints_lib.normalised_thumbnail(gray[p]) for p in names}
    hashes = {p: fingerprints_lib.phash_of_thumbnail(thumbs[p]) for p in names}
    flat = len(files) - len(names)
    label = {p: str(p.relative_to(shared)) for p in names}
    folders = len({p.relative_to(shared).parts[0] for p in files})
    print(f"{len(files)} sample pictures ({flat} flat, no hash) from {folders} folders")

    real_pos, neg = [], []
    for a, b in itertools.combinations(names, 2):
        distance = dedup.hamming(hashes[a], hashes[b])
        mse = fingerprints_lib.thumbnail_mse(thumbs[a], thumbs[b])
        (real_pos if mse < TRUTH_MSE else neg).append((distance, mse, label[a], label[b]))
    print(f"\nall {len(real_pos) + len(neg)} real pairs; same picture by pixel ground truth (MSE < {TRUTH_MSE}):")
    for distance, mse, a, b in sorted(real_pos):
        print(f"  d={distance:3d} mse={mse:.4f}  {a}  <->  {b}")
    neg_d = np.array([d for d, *_ in neg])
    neg_mse = np.array([m for _, m, *_ in neg])
    print(f"different pictures: {len(neg)} pairs, min distance {neg_d.min()}, min MSE {neg_mse.min():.3f}")
    print("  closest different pictures:")
    for distance, mse, a, b in sorted(neg)[:8]:
        print(f"    d={distance:3d} mse={mse:.3f}  {a}  <->  {b}")
    histogram = Counter(int(d) // 8 * 8 for d in neg_d)
    print("  distance histogram (bin start: pairs):", dict(sorted(histogram.items())))

    print("\nsynthetic copies of every real picture vs its original:")
    synthetic: dict[str, list[tuple[int, float]]] = {}
    cross_neg = []
    for path in names:
        for kind, pixels in transforms(gray[path]).items():
            thumb = fingerprints_lib.normalised_thumbnail(pixels)
            h = fingerprints_lib.phash_of_thumbnail(thumb)
            synthetic.setdefault(kind, []).append(
                (dedup.hamming(h, hashes[path]), fingerprints_lib.thumbnail_mse(thumb, thumbs[path]))
            )
            if kind.startswith("darshan"):
                cross_neg.extend(
                    dedup.hamming(h, hashes[o])
                    for o in names
                    if o != path and fingerprints_lib.thumbnail_mse(thumbs[o], thumbs[path]) >= TRUTH_MSE
                )
    for kind, values in synthetic.items():
        d = np.array([v[0] for v in values])
        m = np.array([v[1] for v in values])
        print(
            f"  {kind:26s} n={len(d)} distance max {d.max():3d} p99 {np.percentile(d, 99):5.1f}  MSE max {m.max():.3f}"
        )
    cross_neg_arr = np.array(cross_neg)
    print(f"darshan-style copies vs other pictures: {len(cross_neg_arr)} pairs, min distance {cross_neg_arr.min()}")

    all_neg = np.concatenate([neg_d, cross_neg_arr])
    print(f"\nFP/FN by threshold (negatives: {len(all_neg)} pairs; positives: real + 5 realistic transforms):")
    realistic = [v for k, vs in synthetic.items() if not k.startswith("crop") for v in vs] + [
        (d, m) for d, m, *_ in real_pos
    ]
    crop = synthetic["crop 3% borders (stress)"]
    for t in (8, 16, 20, 24, 28, 32, 40, 48, 56, 64):
        fp = int((all_neg <= t).sum())
        fn = sum(1 for d, _ in realistic if d > t)
        fn_crop = sum(1 for d, _ in crop if d > t)
        print(f"  t={t:3d}: FP {fp:5d}  FN {fn:4d}/{len(realistic)}  (crop stress FN {fn_crop}/{len(crop)})")
    confirmed_fp = int(((neg_d <= dedup.NEAR_CANDIDATE) & (neg_mse <= dedup.CONFIRM_MSE)).sum())
    fn_final = sum(
        1
        for d, m in realistic
        if not (d <= dedup.NEAR_ACCEPT or (d <= dedup.NEAR_CANDIDATE and m <= dedup.CONFIRM_MSE))
    )
    print(
        f"chosen: accept <= {dedup.NEAR_ACCEPT}, candidates <= {dedup.NEAR_CANDIDATE} confirmed by MSE <= "
        f"{dedup.CONFIRM_MSE}: FP {confirmed_fp + int((cross_neg_arr <= dedup.NEAR_ACCEPT).sum())}, "
        f"FN {fn_final}/{len(realistic)}"
    )


def timing(shared: Path, count: int = 10_000, workers: int = 2) -> None:
    """Probe (sha256 + decode + fingerprints) ``count`` copies of the sample pictures."""
    files = [p for p in sample_files(shared) if sniff_format(read_head(p)) in IMAGE_FORMATS]
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for index in range(count):
            source = files[index % len(files)]
            target = Path(tmp) / f"{index:05d}{source.suffix}"
            shutil.copyfile(source, target)
            copies.append(target)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            facts = list(pool.map(probe_file, copies))
        probe_seconds = time.perf_counter() - started
        pixels = [decode_file(p).pixels for p in files]
        started = time.perf_counter()
        for index in range(count):
            fingerprints(pixels[index % len(pixels)])
        fingerprint_seconds = time.perf_counter() - started
        started = time.perf_counter()
        pairs = list(dedup.near_pairs([f.phash for f in facts], dedup.NEAR_CANDIDATE))
        search_seconds = time.perf_counter() - started
    sizes = [p.stat().st_size for p in files]
    print(
        f"{count} files (copies of {len(files)} sample images, mean {np.mean(sizes) / 1e3:.0f} kB): "
        f"probe with {workers} threads {probe_seconds:.1f} s ({count / probe_seconds:.0f} img/s); "
        f"fingerprints() alone {fingerprint_seconds:.1f} s; "
        f"near-pair search {search_seconds:.2f} s ({len(pairs)} pairs)"
    )
    rng = np.random.default_rng(0)
    random_hashes = [
        rng.integers(0, 256, fingerprints_lib.PHASH_BITS // 8, dtype=np.uint8).tobytes().hex() for _ in range(100_000)
    ]
    started = time.perf_counter()
    list(dedup.near_pairs(random_hashes, dedup.NEAR_CANDIDATE))
    print(f"near-pair search over 100,000 hashes: {time.perf_counter() - started:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=default_shared())
    parser.add_argument("--timing", action="store_true", help="also time hashing 10,000 images")
    args = parser.parse_args()
    measure(args.shared)
    if args.timing:
        timing(args.shared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
