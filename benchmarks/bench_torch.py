"""PyTorch: covid19-images vs torchvision ImageFolder + Resize on the same files.

Same DataLoader settings for both (batch 64, same worker count, no shuffle), in the same
run, in alternating rounds; see bench_data_timing for how noise is handled. Usage:

    .venv/bin/python benchmarks/bench_torch.py --kind large-jpeg --count 1000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from bench_data import build, machine
from bench_data_timing import Series, best_ratio, cpu_ratio, measure, paired_ratio


def epoch(dataset, workers: int, batch: int = 64) -> None:
    import torch

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, shuffle=False)
    seen = sum(images.shape[0] for images, _ in loader)
    assert seen == len(dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", default="large-jpeg", choices=("large-jpeg", "all", "png-heavy"))
    parser.add_argument("--count", type=int, default=1000, help="items in the dataset (replicas of real files)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import torch
    import torchvision
    from torchvision import transforms

    from covid19_images import load_covid_xray

    torch.set_num_threads(1)
    report: dict = {"machine": machine(), "kind": args.kind, "items": args.count, "workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="c19-bench-") as tmp:
        data = build(Path(tmp), args.kind, args.count)
        report["distinct_files"] = data.originals
        baseline = torchvision.datasets.ImageFolder(
            str(data.imagefolder),
            transform=transforms.Compose([transforms.Resize((args.size, args.size)), transforms.ToTensor()]),
        )
        start = time.perf_counter()
        ours = load_covid_xray("torch", root=data.root, split=None, image_size=args.size)
        report["ours_construction_s"] = round(time.perf_counter() - start, 3)
        assert len(baseline) == len(ours) == args.count

        # first epoch (no cache): one full epoch of each per round, order alternating
        epoch(torch.utils.data.Subset(baseline, range(128)), args.workers)  # warm page cache / imports
        first = {"imagefolder": Series(args.count), "ours": Series(args.count)}
        for index in range(args.rounds):
            order = ("imagefolder", "ours") if index % 2 == 0 else ("ours", "imagefolder")
            for name in order:
                dataset = baseline if name == "imagefolder" else ours
                first[name].add(measure(lambda d=dataset: epoch(d, args.workers)))

        # cache: fill once, then whole epochs
        cache_dir = Path(tmp) / "cache"
        holder: dict = {}
        fill = measure(
            lambda: holder.setdefault(
                "ds",
                load_covid_xray(
                    "torch", root=data.root, split=None, image_size=args.size, cache=True, cache_dir=cache_dir
                ),
            )
        )
        cached = holder["ds"]
        cached_u8 = load_covid_xray(
            "torch", root=data.root, split=None, image_size=args.size, cache=True, cache_dir=cache_dir, dtype="uint8"
        )
        variants = {
            f"cached_float32_w{args.workers}": (cached, args.workers),
            "cached_float32_w0": (cached, 0),
            f"cached_uint8_w{args.workers}": (cached_u8, args.workers),
        }
        later = {name: Series(args.count) for name in variants}
        for _ in range(3):
            for name, (dataset, workers) in variants.items():
                later[name].add(measure(lambda d=dataset, w=workers: epoch(d, w)))

    base = first["imagefolder"]
    report["imagefolder"] = base.summary()
    report["ours_first_epoch"] = first["ours"].summary()
    report["ratio_first_epoch_best"] = best_ratio(base, first["ours"])
    report["ratio_first_epoch_paired_median"] = paired_ratio(base, first["ours"])
    report["ratio_first_epoch_cpu"] = cpu_ratio(base, first["ours"])
    report["cache_fill"] = {"wall_s": round(fill.wall, 2), "img_s": round(args.count / fill.wall, 1)}
    for name, series in later.items():
        report[name] = series.summary()
        # later epochs vs the baseline's (every ImageFolder epoch decodes again)
        report[f"ratio_{name}_best"] = round(series.best_rate / base.best_rate, 1)
        report[f"ratio_{name}_cpu"] = cpu_ratio(base, series)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
