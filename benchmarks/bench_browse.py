"""The browser: grid page time on a 100,000-row manifest, and thumbnail build rate on the real samples.

Grid: the demo root's manifest (and its annotations) replicated to ``--rows`` rows with fresh
ids, written to a scratch root. Ours answers a grid request from the coded filter index of
``browse.collection`` (vectorised comparisons, one ``bincount`` per facet); the obvious
alternative filters the pandas DataFrame per request (``df[col] == value`` per filter, a
``value_counts`` per facet under the other filters). Both render the same template with the
same cards, in the same process, over the same request mix, after one warm-up request; then
the real server (``covid19-images browse`` in its own process) is timed over HTTP.

Thumbnails: every distinct picture of the demo root synced from ``../shared/upstream`` (JPEG,
PNG, 16-bit PNG, DICOM, NIfTI, video), into an empty cache each round. Ours:
``Renderer.build`` (JPEG draft decoding, a thread pool); the alternative: the same reader at
full resolution, then Pillow's resize, one file after another. Rounds alternate. Usage:

    PYTHONPATH=src .venv/bin/python benchmarks/bench_browse.py --json build/bench_browse.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from bench_data import machine  # noqa: E402
from bench_data_timing import measure  # noqa: E402

from covid19_images.browse import pages  # noqa: E402
from covid19_images.browse.collection import FACETS, PAGE_SIZE, Collection  # noqa: E402
from covid19_images.browse.links import ServerLinks  # noqa: E402
from covid19_images.browse.render import render  # noqa: E402
from covid19_images.manifest import integrity  # noqa: E402
from covid19_images.manifest.build import ANNOTATIONS_FILE, MANIFEST_FILE, manifest_bytes, read_manifest  # noqa: E402
from covid19_images.manifest.io import write_atomic  # noqa: E402

REQUESTS = (
    {},
    {"label": "covid-19"},
    {"modality": "xray", "label": "normal", "page": "7"},
    {"source": "darshan-xray", "duplicate": "other copy"},
    {"annotation": "mask", "split": "train"},
    {"age": "child (<18)", "view": "PA"},
)


def demo_root(work: Path) -> Path:
    """A root synced from ../shared/upstream through local mirrors, as ``make demo`` makes it."""
    from covid19_images.core.paths import find_root
    from covid19_images.sources.registry import REGISTRY_FILE, load_registry
    from covid19_images.sync.run import sync
    from covid19_images.testing.mirrors import build_sample_mirrors, default_shared

    project = find_root()
    build_sample_mirrors(default_shared(), work / "mirrors", list(load_registry(project).values()))
    root = work / "root"
    root.mkdir()
    import git

    git.Repo.init(root, initial_branch="main")
    shutil.copyfile(project / REGISTRY_FILE, root / REGISTRY_FILE)
    assert not sync(root, mirror=work / "mirrors", progress=False).failed
    return root


def replicated_root(source: Path, target: Path, rows: int) -> Path:
    manifest = read_manifest(source)
    annotations = pd.read_csv(source / ANNOTATIONS_FILE, dtype=str, keep_default_na=False)
    copies = -(-rows // len(manifest))
    parts, notes = [], []
    for k in range(copies):
        part = manifest.copy()
        suffix = f"{k:05d}"
        part["image_id"] = part["image_id"].str[:11] + suffix
        part["dup_group"] = np.where(part["dup_group"] != "", part["dup_group"].str[:11] + suffix, "")
        part["path"] = part["path"] + f"?{suffix}"
        parts.append(part)
        note = annotations.copy()
        note["image_id"] = note["image_id"].str[:11] + suffix
        notes.append(note)
    big = pd.concat(parts, ignore_index=True).head(rows)
    (target / "manifests").mkdir(parents=True)
    shutil.copyfile(source / "sources.yaml", target / "sources.yaml")
    data = manifest_bytes(big)
    integrity.write_record(target / MANIFEST_FILE, data)
    write_atomic(target / MANIFEST_FILE, data)
    notes_data = pd.concat(notes).to_csv(index=False, lineterminator="\n").encode()
    integrity.write_record(target / ANNOTATIONS_FILE, notes_data)
    write_atomic(target / ANNOTATIONS_FILE, notes_data)
    shutil.copyfile(source / "manifests/problems.csv", target / "manifests/problems.csv")
    return target


def pandas_page(collection: Collection, facet_columns: pd.DataFrame, filters: dict, number: int) -> dict:
    """The alternative: filter the DataFrame on every request and count with value_counts."""
    frame = facet_columns

    def masked(skip: str = "") -> pd.Series:
        keep = pd.Series(True, index=frame.index)
        for name, value in filters.items():
            if name != skip:
                column = frame[name]
                keep &= column.str.contains(value, regex=False) if name == "annotation" else column == value
        return keep

    keep = masked()
    counts = {}
    for name in FACETS:
        within = frame.loc[keep if name not in filters else masked(name), name]
        if name == "annotation":
            counts[name] = [(k, int(within.str.contains(k, regex=False).sum())) for k in ("mask", "box")]
        else:
            counts[name] = list(within.value_counts().sort_index().items())
    rows = np.flatnonzero(keep.to_numpy())[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    total = int(keep.sum())

    class _Page:
        pass

    page = _Page()
    page.rows, page.number, page.total, page.pages = rows, number, total, max(1, -(-total // PAGE_SIZE))
    return {
        "filters": filters,
        "facets": [(n, counts[n]) for n in FACETS],
        "cards": [pages.card(collection, int(p)) for p in rows],
        "page": page,
    }


def ours_page(collection: Collection, filters: dict, number: int) -> dict:
    return pages.grid(collection, filters, number)


def time_requests(answer, repeats: int) -> list[float]:
    links = ServerLinks()
    times = []
    for _ in range(repeats):
        for request in REQUESTS:
            filters = {k: v for k, v in request.items() if k != "page"}
            start = time.perf_counter()
            context = answer(filters, int(request.get("page", "1")))
            render("grid.html", links, 0, **context)
            times.append(time.perf_counter() - start)
    return times


def grid_benchmark(root: Path, rows: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="c19-bench-browse-") as tmp:
        big = replicated_root(root, Path(tmp) / "big", rows)
        start = time.perf_counter()
        collection = Collection(big)
        load = time.perf_counter() - start
        kinds = collection.annotations.groupby("image_id")["kind"].agg(lambda k: ",".join(sorted(set(k))))
        facet_columns = pd.DataFrame(
            {name: collection.manifest[name] for name in ("source", "modality", "view", "label", "split", "license")}
        )
        facet_columns["annotation"] = collection.manifest["image_id"].map(kinds).fillna("none")
        facet_columns["duplicate"] = np.array(collection.facets["duplicate"].values)[
            collection.facets["duplicate"].codes
        ]
        facet_columns["age"] = np.array(collection.facets["age"].values)[collection.facets["age"].codes]
        result: dict = {"rows": len(collection.manifest), "load_s": round(load, 2)}
        series: dict[str, list[float]] = {"ours": [], "pandas": []}
        time_requests(lambda f, n: ours_page(collection, f, n), 1)  # warm-up
        time_requests(lambda f, n: pandas_page(collection, facet_columns, f, n), 1)
        for _ in range(3):  # alternate rounds: both see the same machine load
            series["ours"] += time_requests(lambda f, n: ours_page(collection, f, n), repeats)
            series["pandas"] += time_requests(lambda f, n: pandas_page(collection, facet_columns, f, n), repeats)
        for name, values in series.items():
            result[name] = {
                "median_ms": round(1000 * statistics.median(values), 1),
                "p90_ms": round(1000 * float(np.percentile(values, 90)), 1),
                "max_ms": round(1000 * max(values), 1),
            }
        result["ratio_median"] = round(result["pandas"]["median_ms"] / result["ours"]["median_ms"], 1)
        result["http"] = http_times(big, repeats)
    return result


def http_times(root: Path, repeats: int) -> dict:
    """The real server over HTTP: every request of the mix, after one warm-up request."""
    from urllib.parse import urlencode

    from covid19_images.testing.browser import fetch, running_browser

    with running_browser(root, timeout=180) as base:
        assert fetch(base + "/grid")[0] == 200  # warm-up: loads the manifest
        times = []
        for _ in range(3 * repeats):
            for request in REQUESTS:
                start = time.perf_counter()
                status, _body = fetch(f"{base}/grid?{urlencode(request)}")
                times.append(time.perf_counter() - start)
                assert status == 200, (request, status)
    return {
        "median_ms": round(1000 * statistics.median(times), 1),
        "p90_ms": round(1000 * float(np.percentile(times, 90)), 1),
        "max_ms": round(1000 * max(times), 1),
    }


def baseline_thumbnail(root: Path, row, size: int) -> bytes:
    import io

    from PIL import Image

    from covid19_images.imaging.decode import DecodeError, decode_file

    try:
        pixels = decode_file(root / row["path"], frame=None, fmt=row["format"] or None).pixels
    except DecodeError:
        return b""
    image = Image.fromarray(pixels)
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=82)
    return buffer.getvalue()


def thumbnail_benchmark(root: Path, rounds: int) -> dict:
    """Rates over every distinct picture, into an empty cache each round; wall and CPU time both.

    CPU milliseconds per picture (all threads of this process) is what machine load inflates
    least; ``2 cores`` is the rate that CPU cost allows on the CI machine's two cores.
    """
    from covid19_images.browse.thumbnails import THUMB_SIZE, Renderer

    manifest = read_manifest(root).drop_duplicates("sha256")
    rows = [manifest.iloc[i] for i in range(len(manifest))]
    result: dict = {"pictures": len(rows), "formats": manifest["format"].value_counts().to_dict()}
    runs: dict[str, list] = {"ours": [], "ours_1_thread": [], "baseline": [], "cached": []}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="c19-thumbs-") as tmp:
            renderer = Renderer(root, Path(tmp) / "a")
            runs["ours"].append(measure(lambda r=renderer: r.build(rows, THUMB_SIZE)))
            runs["cached"].append(measure(lambda r=renderer: [r.picture(row, THUMB_SIZE) for row in rows]))
            single = Renderer(root, Path(tmp) / "b")
            runs["ours_1_thread"].append(measure(lambda r=single: r.build(rows, THUMB_SIZE, workers=1)))
            runs["baseline"].append(measure(lambda: [baseline_thumbnail(root, row, THUMB_SIZE) for row in rows]))
    for name, timings in runs.items():
        cpu_ms = 1000 * statistics.median(t.cpu for t in timings) / len(rows)
        result[name] = {
            "img_s_best": round(len(rows) / min(t.wall for t in timings), 1),
            "img_s_median": round(len(rows) / statistics.median(t.wall for t in timings), 1),
            "cpu_ms_per_image": round(cpu_ms, 2),
            "img_s_on_2_free_cores": round(2000 / cpu_ms, 1),
        }
    result["ratio_best"] = round(result["ours"]["img_s_best"] / result["baseline"]["img_s_best"], 2)
    result["ratio_cpu"] = round(result["baseline"]["cpu_ms_per_image"] / result["ours"]["cpu_ms_per_image"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--root", type=Path, help="a synced root (default: sync ../shared/upstream into a scratch root)"
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report: dict = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="c19-bench-demo-") as tmp:
        root = args.root or demo_root(Path(tmp))
        report["thumbnails"] = thumbnail_benchmark(root, args.rounds)
        report["grid"] = grid_benchmark(root, args.rows, args.repeats)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
