"""fastai augmentation: keyed per item (``augment="light"``) vs fastai's per-batch ``aug_transforms``.

The same rows, batch size, workers and 224 px images; one training epoch each (no model),
on the CPU: no augmentation, the same "light" transforms as fastai batch transforms
(``batch_tfms=fastai_light()``: one call per batch, global RNG), and ``augment="light"``
(one call per item inside the DataLoader workers, under a per-item seed). The price of
reproducibility per item is what this measures. Usage:

    .venv/bin/python benchmarks/bench_fastai_augment.py --count 512 --workers 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

from bench_data import build, machine
from bench_data_timing import Series, measure

MODES = ("none", "batch_tfms", "per_item")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bs", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import torch

    from covid19_images import load_covid_xray
    from covid19_images.loaders.fastai.augment import fastai_light

    torch.set_num_threads(1)
    report: dict = {"machine": machine(), "items": args.count, "workers": args.workers, "bs": args.bs}
    with tempfile.TemporaryDirectory(prefix="c19-bench-fastai-aug-") as tmp:
        data = build(Path(tmp), "large-jpeg", args.count)
        common = {"root": data.root, "bs": args.bs, "num_workers": args.workers, "image_size": 224, "cache": True}
        common["cache_dir"] = Path(tmp) / "cache"  # decode once: the epochs then time the augmentation
        loaders = {
            "none": load_covid_xray("fastai", **common),
            "batch_tfms": load_covid_xray("fastai", batch_tfms=fastai_light(), **common),
            "per_item": load_covid_xray("fastai", augment="light", seed=0, **common),
        }
        epochs = {name: Series((len(dls.train_ds) // args.bs) * args.bs) for name, dls in loaders.items()}
        for dls in loaders.values():
            next(iter(dls.train))  # warm up: cache filled, workers forked once
        for index in range(args.rounds):
            for name in MODES[index % 3 :] + MODES[: index % 3]:
                epochs[name].add(measure(lambda d=loaders[name]: sum(len(y) for _, y in d.train)))
    for name in MODES:
        report[name] = epochs[name].summary()
    base = epochs["none"].cpu_ms_per_image
    for name in ("batch_tfms", "per_item"):
        report[f"{name}_extra_cpu_ms_per_image"] = round(epochs[name].cpu_ms_per_image - base, 2)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
