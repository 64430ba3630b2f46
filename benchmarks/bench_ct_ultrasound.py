"""CT and ultrasound loaders on the real samples: construction, first epoch, and what seeking saves.

Builds a root from the real samples in ../shared/upstream (the same bare-mirror sync the
tests use), then, in alternating rounds:

* CT (covid19-pos-case DICOM series + UCSD COVID-CT slices): one torch epoch of
  ``load_covid_ct`` vs a plain per-file loop (pydicom/Pillow decode + resize, no library);
* ultrasound (POCUS videos, every 10th frame): one torch epoch of ``load_covid_ultrasound``
  vs the same frames decoded from the start of the clip for every sampled frame (what the
  loader did before it seeked to the keyframe).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_ct_ultrasound.py --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import yaml
from bench_data import SHARED, machine
from bench_data_timing import Series, best_ratio, cpu_ratio, measure

PROJECT = Path(__file__).resolve().parents[1]
CT = ("covid19-pos-case", "ucsd-covid-ct")
ULTRASOUND = ("pocus-ultrasound",)


def synced_root(base: Path, sources: tuple[str, ...]) -> Path:
    from covid19_images.sources.registry import load_registry
    from covid19_images.sync.run import sync
    from covid19_images.testing.mirrors import build_sample_mirrors

    registry = load_registry(PROJECT)
    mirrors = base / "mirrors"
    build_sample_mirrors(SHARED, mirrors, [registry[s] for s in sources], history=False)
    root = base / "root"
    root.mkdir()
    data = yaml.safe_load((PROJECT / "sources.yaml").read_text())
    data["sources"] = [s for s in data["sources"] if s["name"] in sources]
    (root / "sources.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    for args in (("init", "-q", "-b", "main"), ("add", "sources.yaml")):
        subprocess.run(["git", *args], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-q", "-m", "init"],
        cwd=root,
        check=True,
    )
    report = sync(root, mirror=mirrors, progress=False)
    assert not report.failed, report.summary()
    return root


def epoch(dataset, workers: int) -> None:
    import torch

    loader = torch.utils.data.DataLoader(dataset, batch_size=16, num_workers=workers, shuffle=False)
    assert sum(images.shape[0] for images, _ in loader) == len(dataset)


def plain_ct(items, size: int) -> None:
    """Per item: read the file with its own library, take the slice, resize (no windowing rules)."""
    import pydicom
    from PIL import Image

    for path, fmt in zip(items["file"], items["format"], strict=True):
        if fmt == "dicom":
            pixels = pydicom.dcmread(path).pixel_array.astype(np.float32)
            pixels = (255 * (pixels - pixels.min()) / max(float(np.ptp(pixels)), 1.0)).astype(np.uint8)
            image = Image.fromarray(pixels)
        else:
            image = Image.open(path).convert("L")
        np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))


def from_start_ultrasound(items, size: int) -> None:
    """Every sampled frame decoded from the clip's start (GIFs through Pillow's seek)."""
    import av
    from PIL import Image

    for path, fmt, frame in zip(items["file"], items["format"], items["frame"], strict=True):
        if fmt == "gif":
            with Image.open(path) as image:
                image.seek(int(frame))
                picture = image.convert("RGB")
        else:
            with av.open(path) as container:
                for index, decoded in enumerate(container.decode(video=0)):
                    if index == int(frame):
                        picture = decoded.to_image()
                        break
        np.asarray(picture.resize((size, size), Image.BILINEAR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch

    from covid19_images import load_covid_ct, load_covid_ultrasound

    torch.set_num_threads(1)
    report: dict = {"machine": machine(), "workers": args.workers, "size": args.size}
    with tempfile.TemporaryDirectory(prefix="c19-bench-ctus-") as tmp:
        for name, sources, load, baseline in (
            ("ct", CT, load_covid_ct, plain_ct),
            ("ultrasound", ULTRASOUND, load_covid_ultrasound, from_start_ultrasound),
        ):
            root = synced_root(Path(tmp) / name, sources)
            start = time.perf_counter()
            dataset = load("torch", root=root, split=None, image_size=args.size)
            construction = time.perf_counter() - start
            items = dataset.manifest.assign(file=[str(root / p) for p in dataset.manifest["path"]])
            count = len(dataset)
            series = {"baseline": Series(count), "ours": Series(count)}
            for index in range(args.rounds):
                order = ("baseline", "ours") if index % 2 == 0 else ("ours", "baseline")
                for which in order:
                    if which == "ours":
                        series[which].add(measure(lambda d=dataset: epoch(d, args.workers)))
                    else:
                        series[which].add(measure(lambda i=items, b=baseline: b(i, args.size)))
            report[name] = {
                "items": count,
                "files": int(items["path"].nunique()),
                "construction_s": round(construction, 3),
                "baseline": series["baseline"].summary(),
                "ours": series["ours"].summary(),
                "ratio_best": best_ratio(series["baseline"], series["ours"]),
                "ratio_cpu": cpu_ratio(series["baseline"], series["ours"]),
            }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
