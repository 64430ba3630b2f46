"""TensorFlow: covid19-images vs a hand-written tf.data pipeline on the same files.

The baseline is what the TF tutorials write: list files -> read_file -> decode_image ->
resize -> /255 -> batch -> prefetch, with a parallel (AUTOTUNE) map. Both run in
alternating rounds in one process; see bench_data_timing. Usage:

    .venv/bin/python benchmarks/bench_tf.py --kind large-jpeg --count 1000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

from bench_data import build, machine
from bench_data_timing import Series, best_ratio, cpu_ratio, measure, paired_ratio

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", default="large-jpeg", choices=("large-jpeg", "all", "png-heavy"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from covid19_images import load_covid_xray
    from covid19_images.loaders._frameworks import import_tensorflow

    tf = import_tensorflow()
    report: dict = {"machine": machine(), "kind": args.kind, "items": args.count}
    with tempfile.TemporaryDirectory(prefix="c19-bench-tf-") as tmp:
        data = build(Path(tmp), args.kind, args.count)
        report["distinct_files"] = data.originals
        files = [str(p) for p in data.files]
        classes = sorted(set(data.labels))
        labels = [classes.index(label) for label in data.labels]
        size = (args.size, args.size)

        def decode(path, label):
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
            return tf.image.resize(image, size) / 255.0, label

        baseline = (
            tf.data.Dataset.from_tensor_slices((files, labels))
            .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(args.batch)
            .prefetch(tf.data.AUTOTUNE)
        )
        start = time.perf_counter()
        ours = load_covid_xray("tf", root=data.root, split=None, image_size=args.size, batch_size=args.batch)
        report["ours_construction_s"] = round(time.perf_counter() - start, 3)

        def run(dataset, expected: int = args.count) -> None:
            seen = sum(int(images.shape[0]) for images, _ in dataset)
            assert seen == expected

        run(baseline.take(4), 4 * args.batch)  # warm up: page cache, graph tracing
        run(ours.take(4), 4 * args.batch)
        series = {"handwritten": Series(args.count), "ours": Series(args.count)}
        for index in range(args.rounds):
            order = ("handwritten", "ours") if index % 2 == 0 else ("ours", "handwritten")
            for name in order:
                series[name].add(measure(lambda d=(baseline if name == "handwritten" else ours): run(d)))

        cache_dir = Path(tmp) / "cache"
        fill = measure(
            lambda: load_covid_xray(
                "tf", root=data.root, split=None, image_size=args.size, cache=True, cache_dir=cache_dir
            )
        )
        cached = load_covid_xray(
            "tf",
            root=data.root,
            split=None,
            image_size=args.size,
            batch_size=args.batch,
            cache=True,
            cache_dir=cache_dir,
        )
        later = Series(args.count)
        for _ in range(args.rounds):
            later.add(measure(lambda: run(cached)))

    report["handwritten"] = series["handwritten"].summary()
    report["ours"] = series["ours"].summary()
    report["ratio_best"] = best_ratio(series["handwritten"], series["ours"])
    report["ratio_paired_median"] = paired_ratio(series["handwritten"], series["ours"])
    report["ratio_cpu"] = cpu_ratio(series["handwritten"], series["ours"])
    report["cache_fill"] = {"wall_s": round(fill.wall, 2), "img_s": round(args.count / fill.wall, 1)}
    report["cached"] = later.summary()
    report["ratio_cached_best"] = round(later.best_rate / series["handwritten"].best_rate, 1)
    report["ratio_cached_cpu"] = cpu_ratio(series["handwritten"], later)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
