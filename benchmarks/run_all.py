"""Run every benchmark, each in its own process, and print the table for docs/benchmarks.md.

Separate processes because TensorFlow and torchvision must not be imported in the wrong
order in one interpreter, and so that one benchmark's thread pools and page cache
warm-up do not leak into the next. Usage (about 6 minutes on 2 cores):

    .venv/bin/python benchmarks/run_all.py --out build/benchmarks
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = (
    ("torch_large", "bench_torch.py", ["--kind", "large-jpeg", "--count", "1000", "--rounds", "4"]),
    ("tf_large", "bench_tf.py", ["--kind", "large-jpeg", "--count", "1000", "--rounds", "6"]),
    ("fastai_large", "bench_fastai.py", ["--kind", "large-jpeg", "--count", "1000", "--rounds", "3"]),
    ("torch_all", "bench_torch.py", ["--kind", "all", "--count", "1000", "--rounds", "4"]),
    ("tf_all", "bench_tf.py", ["--kind", "all", "--count", "1000", "--rounds", "6"]),
    ("export_large", "bench_export.py", ["--kind", "large-jpeg", "--count", "1000", "--rounds", "3"]),
    ("fastai_augment", "bench_fastai_augment.py", ["--count", "512", "--rounds", "3"]),
    ("browse", "bench_browse.py", ["--rows", "100000", "--rounds", "3"]),
)


def table(results: dict[str, dict]) -> str:
    lines = ["| benchmark | baseline img/s | ours img/s | ratio (best) | ratio (CPU time) |", "|---|---|---|---|---|"]
    for name, data in results.items():
        if name == "browse":  # thumbnails (img/s) and a 100k-row grid page (ms, so the ratio is baseline / ours)
            thumbs, grid = data["thumbnails"], data["grid"]
            lines.append(
                f"| browse thumbnails vs full decode + resize | {thumbs['baseline']['img_s_best']} | "
                f"{thumbs['ours']['img_s_best']} | {thumbs['ratio_best']}x | {thumbs['ratio_cpu']}x |"
            )
            lines.append(
                f"| browse 100k-row grid page, median ms, vs pandas per request | {grid['pandas']['median_ms']} ms | "
                f"{grid['ours']['median_ms']} ms | {grid['ratio_median']}x | |"
            )
            continue
        if name == "fastai_augment":  # keyed per-item augmentation against fastai's own per-batch aug_transforms
            base, ours = data["batch_tfms"]["img_s_best"], data["per_item"]["img_s_best"]
            lines.append(
                f"| {name} per item (keyed) vs aug_transforms per batch | {base} | {ours} | "
                f"{round(ours / base, 2)}x | |"
            )
            continue
        if name.startswith("torch"):
            rows = [
                ("first epoch vs ImageFolder", "imagefolder", "ours_first_epoch", "first_epoch"),
                ("cache, float32, 2 workers", "imagefolder", "cached_float32_w2", "cached_float32_w2"),
                ("cache, float32, 0 workers", "imagefolder", "cached_float32_w0", "cached_float32_w0"),
                ("cache, uint8, 2 workers", "imagefolder", "cached_uint8_w2", "cached_uint8_w2"),
            ]
        elif name.startswith("tf"):
            rows = [
                ("vs hand-written tf.data", "handwritten", "ours", ""),
                ("cache", "handwritten", "cached", "cached"),
            ]
        elif name.startswith("export"):
            rows = [
                ("map-style loader vs ImageFolder", "imagefolder", "map_style", "map_style"),
                ("stream of a 224 px webdataset export vs ImageFolder", "imagefolder", "stream", "stream"),
            ]
        else:
            rows = [("epoch vs ImageDataLoaders.from_df", "from_df_epoch", "ours_epoch", "epoch")]
        for label, base, ours, key in rows:
            best = data.get(f"ratio_{key}_best" if key else "ratio_best", data.get(f"ratio_{key}_best"))
            cpu = data.get(f"ratio_{key}_cpu" if key else "ratio_cpu")
            lines.append(
                f"| {name} {label} | {data[base]['img_s_best']} | {data[ours]['img_s_best']} | {best}x | {cpu}x |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/benchmarks"))
    parser.add_argument("--only", nargs="*", help="run only these (e.g. torch_large tf_large)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name, script, extra in RUNS:
        if args.only and name not in args.only:
            continue
        target = args.out / f"{name}.json"
        print(f"running {name} ...", flush=True)
        subprocess.run(
            [sys.executable, str(HERE / script), *extra, "--json", str(target)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        results[name] = json.loads(target.read_text())
    print(table(results))


if __name__ == "__main__":
    main()
