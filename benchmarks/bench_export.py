"""Exports and streaming: a first epoch over a pre-resized WebDataset export against
torchvision ImageFolder on the original files, and against the map-style loader.

The export (``image_size=224``, PNG, 100 images per shard) is made once and timed; then
each round runs one full epoch of every pipeline (same DataLoader settings: batch 64,
same workers, no shuffle), order rotating per round. Streaming decodes small PNGs instead
of full-resolution JPEGs, which is the point of pre-resizing; the price is paid once, at
export time, and is reported. Usage:

    .venv/bin/python benchmarks/bench_export.py --count 1000 --workers 2 --json build/bench_export.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

from bench_data import build, machine
from bench_data_timing import Series, best_ratio, cpu_ratio, measure, paired_ratio


def epoch(dataset, workers: int, expected: int, batch: int = 64) -> None:
    import torch

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, shuffle=False)
    seen = sum(images.shape[0] for images, *_ in loader)
    assert seen == expected, (seen, expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", default="large-jpeg", choices=("large-jpeg", "all"))
    parser.add_argument("--count", type=int, default=1000, help="items in the dataset (replicas of real files)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import torch
    import torchvision
    from torchvision import transforms

    from covid19_images import load_covid_xray
    from covid19_images.export import export

    torch.set_num_threads(1)
    report: dict = {"machine": machine(), "kind": args.kind, "items": args.count, "workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="c19-bench-export-") as tmp:
        data = build(Path(tmp), args.kind, args.count)
        out = Path(tmp) / "wds"
        made = measure(
            lambda: export(out, "webdataset", root=data.root, image_size=args.size, shard_size=args.shard_size)
        )
        size = sum(p.stat().st_size for p in out.glob("*.tar"))
        report["export_webdataset"] = {
            "wall_s": round(made.wall, 2),
            "img_s": round(args.count / made.wall, 1),
            "shards": len(list(out.glob("*.tar"))),
            "mb": round(size / 1e6, 1),
        }
        pipelines = {
            "imagefolder": torchvision.datasets.ImageFolder(
                str(data.imagefolder),
                transform=transforms.Compose([transforms.Resize((args.size, args.size)), transforms.ToTensor()]),
            ),
            "map_style": load_covid_xray("torch", root=data.root, split=None, image_size=args.size),
            "stream": load_covid_xray("torch", shards=out, split=None, image_size=args.size),
        }
        epoch(torch.utils.data.Subset(pipelines["imagefolder"], range(128)), args.workers, 128)  # warm-up
        series = {name: Series(args.count) for name in pipelines}
        names = list(pipelines)
        for index in range(args.rounds):
            for name in names[index % 3 :] + names[: index % 3]:
                dataset = pipelines[name]
                series[name].add(measure(lambda d=dataset: epoch(d, args.workers, args.count)))
    base = series["imagefolder"]
    for name, result in series.items():
        report[name] = result.summary()
        if name != "imagefolder":
            report[f"ratio_{name}_best"] = best_ratio(base, result)
            report[f"ratio_{name}_paired_median"] = paired_ratio(base, result)
            report[f"ratio_{name}_cpu"] = cpu_ratio(base, result)
    report["ratio_stream_vs_map_style_best"] = round(series["stream"].best_rate / series["map_style"].best_rate, 2)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
