"""Screenshots of every browser view for docs/ and the README, taken in headless Chromium.

Serves a synced root with ``covid19-images
browse`` and saves one PNG per view, reduced to a small palette so the six stay within a few
hundred kB. The published ones are taken on the miniatures' demo root (``COVID19_IMAGES_SHARED=none
make demo``): its real pictures are the licence-clean ones listed in ATTRIBUTION.md, the rest are
synthetic stand-ins, so nothing non-redistributable reaches docs/. Usage:

    COVID19_IMAGES_SHARED=none make demo DEMO_DIR=build/demo-miniature
    PYTHONPATH=src .venv/bin/python scripts/browse_screenshots.py --root build/demo-miniature/root --out docs
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import pandas as pd
from PIL import Image

from covid19_images.manifest.build import read_manifest
from covid19_images.testing.browser import chromium, running_browser


def _image_with_mask_and_duplicate(root: Path) -> str:
    """A masked image, preferring a real (attributed) picture with boxes and a duplicate."""
    manifest = read_manifest(root)
    annotations = pd.read_csv(root / "manifests/annotations.csv", dtype=str, keep_default_na=False)
    masked = set(annotations.loc[annotations["kind"] == "mask", "image_id"])
    boxed = set(annotations.loc[annotations["kind"] == "box", "image_id"])
    attribution = (Path(__file__).resolve().parents[1] / "ATTRIBUTION.md").read_text(encoding="utf-8")
    real = manifest["path"].map(lambda p: f"/{p.rsplit('/', 1)[-1]}`" in attribution)
    ranked = manifest[manifest["image_id"].isin(masked)].assign(
        score=lambda f: 4 * real[f.index] + 2 * f["image_id"].isin(boxed) + (f["dup_group"] != "")
    )
    return str(ranked.sort_values("score", ascending=False, kind="mergesort")["image_id"].iloc[0])


def small_png(data: bytes, width: int, colours: int = 64) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    quantised = image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    quantised.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("build/demo-miniature/root"))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--width", type=int, default=800)
    args = parser.parse_args()
    views = {
        "sources": "/",
        "grid": "/grid?modality=xray",
        "image": f"/image/{_image_with_mask_and_duplicate(args.root)}",
        "review": "/review",
        "bias": "/bias",
        "problems": "/problems?level=error",
    }
    total = 0
    with running_browser(args.root) as base, chromium(1280, 860) as driver:
        for name, path in views.items():
            driver.get(base + path)
            time.sleep(1.0)  # lazy thumbnails
            target = args.out / f"browse-{name}.png"
            data = small_png(driver.get_screenshot_as_png(), args.width)
            target.write_bytes(data)
            total += len(data)
            print(f"{target}: {len(data) // 1024} kB")
    print(f"{total // 1024} kB in all")


if __name__ == "__main__":
    main()
