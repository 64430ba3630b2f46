"""Benchmark data: real upstream X-ray files replicated into a root and an ImageFolder.

Both layouts point at the *same* files (symlinks), so every pipeline reads identical
bytes from the page cache and the comparison measures decoding and preprocessing, not
the disk. The root gets a manifest written directly (one row per replica) so the loaders
run unchanged; sha256 is the real file hash, so the cache key is realistic.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(SRC))

from covid19_images.core.schema import MANIFEST_COLUMNS  # noqa: E402
from covid19_images.manifest.build import MANIFEST_FILE, write_atomic  # noqa: E402
from covid19_images.manifest.integrity import write_record  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "upstream"
XRAY_FOLDERS = {
    # folder -> label taken from the parent folder name, else this default
    "zhanglab-kermany-chest-xray": "normal",
    "ieee8023-covid-chestxray-dataset/images": "covid-19",
    "agchung-Figure1-COVID-chestxray-dataset/images": "covid-19",
    "agchung-Actualmed-COVID-chestxray-dataset/images": "covid-19",
    "coyotespike-covid19-detection-xray-dataset": "normal",
    "nih-chestxray14-sample": "other",
}
_FOLDER_LABELS = {"PNEUMONIA": "pneumonia", "NORMAL": "normal", "Normal": "normal", "COVID-19": "covid-19"}


@dataclass
class Source:
    path: Path
    label: str
    fmt: str
    width: int
    height: int
    sha256: str


@dataclass
class BenchSet:
    root: Path
    imagefolder: Path
    files: list[Path]  # the served replicas, in manifest order
    labels: list[str]
    originals: int


def real_xrays(kind: str) -> list[Source]:
    """``large-jpeg``: full-resolution JPEG chest X-rays (both sides >= 896 px, the kind a
    hospital export gives). ``all``: every sample X-ray image as it comes (JPEG and PNG,
    any size). ``png-heavy``: every sample PNG X-ray plus half as many JPEGs (2/3 PNG)."""
    from PIL import Image

    found: list[Source] = []
    for folder, default in XRAY_FOLDERS.items():
        for path in sorted((SHARED / folder).rglob("*")):
            if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or "mask" in path.as_posix().lower():
                continue
            try:
                with Image.open(path) as image:
                    fmt, (width, height) = image.format.lower(), image.size
            except OSError:
                continue
            if kind == "large-jpeg" and (fmt != "jpeg" or min(width, height) < 896):
                continue
            label = _FOLDER_LABELS.get(path.parent.name, default)
            found.append(Source(path, label, fmt, width, height, hashlib.sha256(path.read_bytes()).hexdigest()))
    if not found:
        raise SystemExit(f"no sample images under {SHARED}")
    if kind == "png-heavy":
        pngs = [s for s in found if s.fmt == "png"]
        jpegs = [s for s in found if s.fmt == "jpeg"]
        found = [*pngs, *jpegs[: len(pngs) // 2]]
    return found


def build(base: Path, kind: str, count: int) -> BenchSet:
    """A root (manifest + datasets/bench/...) and an ImageFolder with ``count`` replicas."""
    import pandas as pd

    sources = real_xrays(kind)
    root = base / "root"
    folder = root / "datasets" / "bench"
    imagefolder = base / "imagefolder"
    rows, files, labels = [], [], []
    for index in range(count):
        source = sources[index % len(sources)]
        name = f"{index:06d}{source.path.suffix.lower()}"
        served = folder / source.label / name
        mirror = imagefolder / source.label / name
        for link in (served, mirror):
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                os.symlink(source.path, link)
        relative = served.relative_to(root).as_posix()
        row = dict.fromkeys(MANIFEST_COLUMNS, "")
        row.update(
            image_id=hashlib.sha1(relative.encode()).hexdigest()[:16],
            source="bench",
            path=relative,
            sha256=source.sha256,
            format=source.fmt,
            width=str(source.width),
            height=str(source.height),
            frames="1",
            modality="xray",
            view="PA",
            label=source.label,
            patient_id=f"bench:{index}",
            split="val" if index % 10 == 9 else "train",
        )
        rows.append(row)
        files.append(served)
        labels.append(source.label)
    (root / "sources.yaml").write_text("sources: []\n")
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    data = frame.to_csv(index=False, lineterminator="\n").encode()
    write_record(root / MANIFEST_FILE, data)  # loaders refuse a manifest without its integrity record
    write_atomic(root / MANIFEST_FILE, data)
    return BenchSet(root=root, imagefolder=imagefolder, files=files, labels=labels, originals=len(sources))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        cpu = model
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {cores} cores available, load average {load:.1f} at start, Python {platform.python_version()}"


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=SRC
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
