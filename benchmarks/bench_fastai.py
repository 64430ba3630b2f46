"""fastai: covid19-images vs ImageDataLoaders.from_df on the same rows.

Both get the same DataFrame rows (train/valid from the split column), batch size,
worker count and a 224 px target (``item_tfms=Resize(224, method="squish")`` for the
baseline; ours resizes while decoding). Measured: time to the first training batch
(construction included) and full training-epoch throughput. Usage:

    .venv/bin/python benchmarks/bench_fastai.py --count 1000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

from bench_data import build, machine
from bench_data_timing import Series, best_ratio, cpu_ratio, measure, paired_ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", default="large-jpeg", choices=("large-jpeg", "all"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bs", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import torch
    from fastai.vision.all import ImageDataLoaders, Resize

    from covid19_images import load_covid_xray
    from covid19_images.loaders import load_manifest

    torch.set_num_threads(1)
    report: dict = {"machine": machine(), "kind": args.kind, "items": args.count, "workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="c19-bench-fastai-") as tmp:
        data = build(Path(tmp), args.kind, args.count)
        rows = load_manifest(data.root)
        rows["is_valid"] = rows["split"] == "val"

        def baseline():
            return ImageDataLoaders.from_df(
                rows,
                path=data.root,
                fn_col="path",
                label_col="label",
                valid_col="is_valid",
                item_tfms=Resize(224, method="squish"),
                bs=args.bs,
                num_workers=args.workers,
                shuffle=False,
            )

        def ours():
            return load_covid_xray("fastai", root=data.root, bs=args.bs, num_workers=args.workers, shuffle=False)

        def first_batch(factory):
            dls = factory()
            next(iter(dls.train))
            return dls

        first_batch(baseline)  # imports, page cache
        first = {"from_df": Series(1), "ours": Series(1)}
        epochs = {"from_df": Series(0), "ours": Series(0)}
        for index in range(args.rounds):
            order = ("from_df", "ours") if index % 2 == 0 else ("ours", "from_df")
            for name in order:
                factory = baseline if name == "from_df" else ours
                holder: dict = {}
                first[name].add(measure(lambda f=factory, h=holder: h.setdefault("dls", first_batch(f))))
                dls = holder["dls"]
                epochs[name].items = (len(dls.train_ds) // args.bs) * args.bs
                epochs[name].add(measure(lambda d=dls: sum(len(y) for _, y in d.train)))

    for name in ("from_df", "ours"):
        report[f"{name}_first_batch_s"] = round(min(t.wall for t in first[name].runs), 2)
        report[f"{name}_epoch"] = epochs[name].summary()
    report["ratio_first_batch"] = round(report["from_df_first_batch_s"] / report["ours_first_batch_s"], 2)
    report["ratio_epoch_best"] = best_ratio(epochs["from_df"], epochs["ours"])
    report["ratio_epoch_paired_median"] = paired_ratio(epochs["from_df"], epochs["ours"])
    report["ratio_epoch_cpu"] = cpu_ratio(epochs["from_df"], epochs["ours"])
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
