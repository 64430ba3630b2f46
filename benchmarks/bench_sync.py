"""Sync at the field's real size: first sync, no-change sync, one-image sync, duplicate search.

Generates an upstream laid out like the full NIH ChestX-ray14 release (``Data_Entry_2017.csv``
plus ``images/*.png``; small random PNGs so the run measures the pipeline, not the disk),
publishes it as a local bare mirror under the NIH source's URL, and syncs a fresh root through
``--mirror`` exactly as a maintainer would. Each sync runs in its own process; its wall time,
the time spent inside ``sync()`` (without interpreter start-up and imports) and its peak
resident memory (``wait4`` rusage) are reported. Generated data and mirrors are cached under
``build/bench-sync/`` and reused by later runs.

``--cli`` (or ``--cli-only``) times what a maintainer runs instead: the whole
``covid19-images sync`` process, on a root registering every source of ``sources.yaml``, synced
through the samples' mirrors plus the generated NIH-like one (first sync, no change, one new
image, ``--offline --rebuild``; ``--cores N`` adds a first sync pinned to N cores).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_sync.py --size 50000
    PYTHONPATH=src .venv/bin/python benchmarks/bench_sync.py --cli-only --size 50000 --cores 1 --cores 2
    PYTHONPATH=src .venv/bin/python benchmarks/bench_sync.py --dup-only --fingerprints 1000000
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from bench_data_timing import best_of
from sync_phases import BUILD_IMPORTS, CHANGED_SYNC_IMPORTS

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
SOURCE = "nih-chestxray14-sample"
HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImageWidth,OriginalImageHeight,OriginalImagePixelSpacing_x,OriginalImagePixelSpacing_y"
)
FINDINGS = ("No Finding", "Infiltration", "Effusion|Atelectasis", "Pneumonia", "Cardiomegaly", "Nodule|Mass")
SIDE = 24


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None, data: bytes | None = None) -> str:
    full = {
        **os.environ,
        "GIT_AUTHOR_NAME": "upstream",
        "GIT_AUTHOR_EMAIL": "upstream@example.invalid",
        "GIT_COMMITTER_NAME": "upstream",
        "GIT_COMMITTER_EMAIL": "upstream@example.invalid",
        "GIT_AUTHOR_DATE": "2020-01-01T00:00:00+00:00",
        "GIT_COMMITTER_DATE": "2020-01-01T00:00:00+00:00",
        **(env or {}),
    }
    out = subprocess.run(["git", *args], cwd=cwd, env=full, input=data, check=True, capture_output=True)
    return out.stdout.decode().strip()


def _png(index: int) -> bytes:
    """A small random grayscale PNG, different for every index (so no picture repeats)."""
    import io

    from PIL import Image

    pixels = np.random.default_rng(index).integers(0, 256, size=(SIDE, SIDE), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _name(index: int) -> str:
    return f"{index // 7 + 1:08d}_{index % 7:03d}.png"


def _row(index: int) -> str:
    patient = index // 7 + 1
    finding = FINDINGS[index % len(FINDINGS)]
    age = f"{20 + patient % 60:03d}Y"
    return f"{_name(index)},{finding},{index % 7},{patient},{age},{'MF'[patient % 2]},PA,2048,2500,0.14,0.14"


def _write_images(bounds: tuple[int, int, str]) -> None:
    start, stop, folder = bounds
    for index in range(start, stop):
        Path(folder, _name(index)).write_bytes(_png(index))


def generate(size: int, base: Path) -> Path:
    """``base/mirror-<size>``: a bare repo with one commit holding ``size`` images (cached)."""
    base = base.resolve()
    mirror_root = base / f"mirror-{size}"
    done = mirror_root / "COMPLETE"
    if done.is_file():
        return mirror_root
    from covid19_images.sources.registry import load_registry
    from covid19_images.testing.mirrors import mirror_path

    spec = load_registry(PROJECT)[SOURCE]
    work = base / f"upstream-{size}"
    images = work / "images"
    images.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    step = 2000
    with Pool(os.cpu_count() or 1) as pool:
        pool.map(_write_images, [(s, min(s + step, size), str(images)) for s in range(0, size, step)])
    (work / "Data_Entry_2017.csv").write_text(
        HEADER + "\n" + "\n".join(_row(i) for i in range(size)) + "\n", encoding="utf-8"
    )
    print(f"generated {size} images in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if not (work / ".git").is_dir():
        _git("init", "-q", "-b", spec.branch, ".", cwd=work)
    _git("add", "-A", ".", cwd=work)
    _git("commit", "-q", "-m", f"NIH-like release, {size} images", cwd=work)
    destination = mirror_path(mirror_root, spec.url)
    destination.parent.mkdir(parents=True, exist_ok=True)
    _git("clone", "-q", "--bare", "--no-local", str(work), str(destination), cwd=base)
    done.write_text(_git("rev-parse", "HEAD", cwd=work), encoding="ascii")
    print(f"published mirror in {time.perf_counter() - started:.1f} s total", file=sys.stderr)
    return mirror_root


def add_one_image(mirror_root: Path, size: int, on_top: bool = False) -> str:
    """Push one upstream commit that adds one image and its CSV row (git plumbing, no checkout).

    On the generated release, or (``on_top``) on the branch's current head, so that a second
    one-image sync can follow the first; the image is numbered after those added before it.
    """
    from covid19_images.sources.registry import load_registry
    from covid19_images.testing.mirrors import mirror_path

    spec = load_registry(PROJECT)[SOURCE]
    bare = mirror_path(mirror_root, spec.url)
    release = (mirror_root / "COMPLETE").read_text(encoding="ascii").strip()
    base = _git("rev-parse", f"refs/heads/{spec.branch}", cwd=bare) if on_top else release
    index = size + int(_git("rev-list", "--count", f"{release}..{base}", cwd=bare))  # images added so far
    csv = _git("show", f"{base}:Data_Entry_2017.csv", cwd=bare) + "\n" + _row(index) + "\n"
    csv_blob = _git("hash-object", "-w", "--stdin", cwd=bare, data=csv.encode())
    png_blob = _git("hash-object", "-w", "--stdin", cwd=bare, data=_png(index))
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git("read-tree", base, cwd=bare, env=env)
        _git("update-index", "--add", "--cacheinfo", f"100644,{csv_blob},Data_Entry_2017.csv", cwd=bare, env=env)
        _git("update-index", "--add", "--cacheinfo", f"100644,{png_blob},images/{_name(index)}", cwd=bare, env=env)
        tree = _git("write-tree", cwd=bare, env=env)
    commit = _git("commit-tree", tree, "-p", base, "-m", "add one image", cwd=bare)
    _git("update-ref", f"refs/heads/{spec.branch}", commit, cwd=bare)
    return commit


def reset_mirror(mirror_root: Path) -> None:
    from covid19_images.sources.registry import load_registry
    from covid19_images.testing.mirrors import mirror_path

    spec = load_registry(PROJECT)[SOURCE]
    base = (mirror_root / "COMPLETE").read_text(encoding="ascii").strip()
    _git("update-ref", f"refs/heads/{spec.branch}", base, cwd=mirror_path(mirror_root, spec.url))


def new_root(path: Path, *, every_source: bool = False) -> Path:
    """A fresh data root registering the NIH source only, or (``every_source``) every source of the project."""
    import yaml

    data = yaml.safe_load((PROJECT / "sources.yaml").read_text(encoding="utf-8"))
    if not every_source:
        data["sources"] = [s for s in data["sources"] if s["name"] == SOURCE]
    path.mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=path)
    (path / "sources.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    _git("add", "sources.yaml", cwd=path)
    _git("commit", "-q", "-m", "init", cwd=path)
    return path


def child_env() -> dict[str, str]:
    """A timed process's environment: ``src`` on the path (a ``PYTHONPATH`` given to the benchmark
    wins), its bytecode cached as an installed package's is.

    pip compiles a package's bytecode when it installs it, and Python caches it for a checkout
    that may write ``__pycache__``; this machine sets ``PYTHONDONTWRITEBYTECODE``, so every timed
    process used to compile the modules of ours it imports from source again (about 0.07 s of a
    one-image sync's imports). :func:`compile_sources` compiles them once, before any timing.
    """
    env = {"PYTHONPATH": str(PROJECT / "src"), **os.environ}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_sources() -> str:
    """Compile the package the timed processes import (the one on their path), as pip does at install."""
    code = "import covid19_images, pathlib; print(pathlib.Path(covid19_images.__file__).parent)"
    package = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True)
    folder = package.stdout.strip()
    if not compileall.compile_dir(folder, quiet=1):
        raise SystemExit(f"cannot compile {folder}")
    return folder


def timed_sync(root: Path, mirror_root: Path, *extra: str) -> dict:
    """One sync in a child process: wall seconds, CPU seconds, seconds inside ``sync()``, peak RSS in MB.

    CPU seconds (user + system, worker processes included) are the figure to compare on a
    shared machine: wall time there also counts the time other jobs held the cores.
    """
    env = child_env()
    args = [sys.executable, str(Path(__file__).resolve()), "_sync", str(root), str(mirror_root), *extra]
    started = time.perf_counter()
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if child.returncode:
        raise SystemExit(f"sync failed ({child.returncode})")
    inner = json.loads(output.decode().strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime  # includes the worker processes it waited for
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), **inner, "peak_mb": round(usage.ru_maxrss / 1024)}


def _child_sync(root: str, mirror_root: str, *extra: str) -> None:
    from covid19_images.sync.run import sync

    started = time.perf_counter()
    report = sync(
        Path(root), mirror=Path(mirror_root), offline="--offline" in extra, rebuild="--rebuild" in extra, progress=False
    )
    seconds = time.perf_counter() - started
    assert not report.failed, report.summary()
    build = report.build
    print(
        json.dumps(
            {
                "sync_s": round(seconds, 2),
                "rows": len(build.manifest),
                "probed": build.probed,
                "reused_sources": build.reused,
            }
        )
    )


def bench_sync(size: int, base: Path) -> dict:
    mirror_root = generate(size, base)
    reset_mirror(mirror_root)
    compile_sources()
    with tempfile.TemporaryDirectory(dir=base, prefix="root-") as tmp:
        root = new_root(Path(tmp) / "root")
        results = {"size": size}
        results["first"] = timed_sync(root, mirror_root)
        results["no_change"] = timed_sync(root, mirror_root)
        add_one_image(mirror_root, size)
        try:
            results["one_image"] = timed_sync(root, mirror_root)
        finally:
            reset_mirror(mirror_root)
        results["rebuild_offline"] = timed_sync(root, mirror_root, "--offline", "--rebuild")
    return results


def all_sources_mirrors(size: int, base: Path) -> Path:
    """Mirrors of every registered source: the samples' (``../shared/upstream``) plus the generated NIH-like one.

    Every source gets its sample mirror as ``make demo`` builds it; the NIH source's URL points
    at the generated ``size``-image upstream instead (a symlink to :func:`generate`'s bare repo,
    so :func:`add_one_image` and :func:`reset_mirror` act on both). Cached under ``base``.
    """
    from covid19_images.sources.registry import load_registry
    from covid19_images.testing.mirrors import build_sample_mirrors, default_shared, mirror_path

    generated = generate(size, base)
    mirror_root = base / f"all-mirrors-{size}"
    registry = load_registry(PROJECT)
    if not (mirror_root / "COMPLETE").is_file():
        others = [spec for name, spec in registry.items() if name != SOURCE]
        build_sample_mirrors(default_shared(), mirror_root, others)
        link = mirror_path(mirror_root, registry[SOURCE].url)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(mirror_path(generated, registry[SOURCE].url).resolve())
        (mirror_root / "COMPLETE").write_text((generated / "COMPLETE").read_text(encoding="ascii"), encoding="ascii")
    return mirror_root


def _sync_arguments(mirror_root: Path) -> list[str]:
    """The maintainer's command after the program: what :func:`timed_cli` and :func:`phased_cli` both run."""
    return ["sync", "--mirror", str(mirror_root), "--quiet"]


def timed_cli(root: Path, mirror_root: Path, *extra: str, cores: int | None = None) -> dict:
    """The ``covid19-images sync`` process as a maintainer runs it: wall and CPU seconds (user + system,
    its git and probe children included), peak RSS. ``cores`` pins it (``taskset``) to that many cores."""
    env = child_env()
    args = [sys.executable, "-m", "covid19_images.cli", *_sync_arguments(mirror_root), *extra]
    if cores:
        args = ["taskset", "-c", ",".join(str(c) for c in range(cores)), *args]
    started = time.perf_counter()
    child = subprocess.Popen(args, env=env, cwd=root, stdout=subprocess.PIPE)
    assert child.stdout is not None
    output = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"covid19-images sync failed:\n{output}")
    last = output.strip().splitlines()[-1]
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_mb": round(usage.ru_maxrss / 1024),
        "said": last,
    }


def phased_cli(root: Path, mirror_root: Path, out: Path) -> dict:
    """The same sync as :func:`timed_cli`, run by ``sync_phases.py``: each stage's wall seconds."""
    args = [sys.executable, str(HERE / "sync_phases.py"), str(out), *_sync_arguments(mirror_root)]
    subprocess.run(args, env=child_env(), cwd=root, stdout=subprocess.DEVNULL, check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def floor_process() -> dict:
    """The floor of any CLI process: an interpreter that imports nothing of ours."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    _, _, usage = os.wait4(child.pid, 0)
    return {"wall_s": round(time.perf_counter() - started, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3)}


def build_imports(modules: tuple[str, ...] = BUILD_IMPORTS) -> dict:
    """The fixed part of any changed sync: importing ``modules`` in a fresh process that has
    already imported the command (wall and CPU seconds of the imports alone, in the run of median
    wall time of three)."""
    code = (
        "import resource, time; import covid19_images.cli, covid19_images.sync.run\n"
        "cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2]); w, c = time.perf_counter(), cpu()\n"
        f"for name in {modules!r}: __import__(name)\n"
        "print(time.perf_counter() - w, cpu() - c)"
    )
    env = child_env()
    runs: list[tuple[float, ...]] = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        runs.append(tuple(map(float, out.stdout.split())))
    wall, cpu = sorted(runs)[1]  # the run of median wall time, with its own CPU time
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "modules": list(modules)}


def _source_path() -> str:
    """The generated source's checkout folder, relative to a root."""
    from covid19_images.sources.registry import load_registry

    return load_registry(PROJECT)[SOURCE].path


def timed_move(root: Path, source_path: str) -> dict:
    """The git commands a sync runs to move one checkout by one commit, timed in a synced root.

    ``sources.git.update_source`` asks whether the pin is an ancestor of the fetched commit, checks
    the new commit out and stages the gitlink. Here the checkout goes back one commit and forward
    again (the forward move timed, median of three), so the root ends as it was.
    """
    checkout = root / source_path
    new = _git("rev-parse", "HEAD", cwd=checkout)
    old = _git("rev-parse", "HEAD~1", cwd=checkout)
    runs = []
    for _ in range(3):
        _git("checkout", "--quiet", "--detach", old, cwd=checkout)
        started = time.perf_counter()
        _git("merge-base", "--is-ancestor", old, new, cwd=checkout)
        _git("checkout", "--quiet", "--detach", new, cwd=checkout)
        _git("add", "--", source_path, cwd=root)
        runs.append(time.perf_counter() - started)
    return {"wall_s": round(sorted(runs)[1], 3), "files": len(_git("ls-files", "-z", cwd=checkout).split("\0"))}


def timed_manifest_io(root: Path, scratch: Path) -> dict:
    """What any build pays to replace the manifest, whatever it computes, with the sync's own calls:
    read the previous file and check it against its integrity record (``manifest.io.read_manifest``),
    then record and atomically write a new one of the same size (``manifest.build.write_manifest``:
    ``integrity.write_record`` naming the file it replaces, then ``write_atomic``: a temporary file,
    fsync, rename). Median of five, into ``scratch`` on the same file system."""
    from covid19_images.manifest import integrity
    from covid19_images.manifest.io import write_atomic

    manifest = root / "manifests" / "manifest.csv"
    target = scratch / "manifest.csv"
    rows = manifest.read_bytes().count(b"\n") - 1
    replaces = None
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        data = manifest.read_bytes()
        integrity.check(manifest, data)
        changed = data[:-1] + b"\n"  # another bytes object of the same length, as a patched manifest
        digest = integrity.write_record(target, changed, rows, replaces)
        write_atomic(target, changed)
        runs.append(time.perf_counter() - started)
        replaces = (digest, integrity.file_identity(target.stat()))
    target.unlink()
    integrity.record_path(target).unlink()
    return {"wall_s": round(sorted(runs)[2], 3), "bytes": len(data)}


def changed_sync_floor(results: dict) -> dict:
    """What any sync that moves a source pays before it reads a byte of the change, against 5 % of the first.

    A lower bound: the fastest no-change sync of the run (interpreter, command, git's status and fetch of
    every source, the unchanged check), importing what a changed sync loads (:data:`CHANGED_SYNC_IMPORTS`),
    git's move of the one checkout (:func:`timed_move`) and replacing the manifest file
    (:func:`timed_manifest_io`); the parse, the duplicate search, the splits and the annotations come on
    top. A build whose cost followed the change could not go below it.
    """
    fastest = min(run["wall_s"] for run in results["no_change"])
    move = results["move_checkout"]["wall_s"]
    manifest_io = results["manifest_io"]["wall_s"]
    floor = fastest + results["changed_sync_imports"]["wall_s"] + move + manifest_io
    return {
        "no_change_best_s": fastest,
        "imports_s": results["changed_sync_imports"]["wall_s"],
        "move_checkout_s": move,
        "manifest_io_s": manifest_io,
        "floor_s": round(floor, 2),
        "five_percent_of_first_s": round(0.05 * results["first"]["wall_s"], 2),
        "one_image_over_floor_s": round(results["one_image"]["wall_s"] - floor, 2),
    }


def bench_cli(size: int, base: Path, rounds: int = 3, cores: tuple[int, ...] = ()) -> dict:
    """Every registered source through local mirrors, the NIH one ``size`` images: the CLI process timed.

    First sync; no-change syncs (``rounds``, best and all); one new NIH image; no-change again; one
    more new image with each stage timed (``sync_phases.py``); ``--offline --rebuild``; and, per entry
    of ``cores``, a first sync pinned to that many cores.
    """
    mirror_root = all_sources_mirrors(size, base)
    reset_mirror(mirror_root)
    results: dict = {
        "size": size,
        "bytecode_compiled": compile_sources(),
        "load_before": os.getloadavg(),
        "python_floor": floor_process(),
        "build_imports": build_imports(),
        "changed_sync_imports": build_imports(CHANGED_SYNC_IMPORTS),
    }
    with tempfile.TemporaryDirectory(dir=base, prefix="cli-root-") as tmp:
        root = new_root(Path(tmp) / "root", every_source=True)
        results["first"] = timed_cli(root, mirror_root)
        results["no_change"] = [timed_cli(root, mirror_root) for _ in range(rounds)]
        add_one_image(mirror_root, size)
        try:
            results["one_image"] = timed_cli(root, mirror_root)
            results["no_change_after"] = timed_cli(root, mirror_root)
            results["move_checkout"] = timed_move(root, _source_path())
            results["manifest_io"] = timed_manifest_io(root, Path(tmp))
            add_one_image(mirror_root, size, on_top=True)
            results["one_image_phases"] = phased_cli(root, mirror_root, Path(tmp) / "phases.json")
        finally:
            reset_mirror(mirror_root)
        results["rebuild_offline"] = timed_cli(root, mirror_root, "--offline", "--rebuild")
    results["changed_sync_floor"] = changed_sync_floor(results)
    for count in cores:
        with tempfile.TemporaryDirectory(dir=base, prefix="cli-root-") as tmp:
            root = new_root(Path(tmp) / "root", every_source=True)
            results[f"first_{count}_cores"] = timed_cli(root, mirror_root, cores=count)
    results["load_after"] = os.getloadavg()
    return results


def bench_duplicates(count: int, full_sample: int, added: int) -> dict:
    """Exact near-duplicate search over ``count`` random 256-bit fingerprints.

    Measures the persistent path (an index of ``count`` fingerprints, ``added`` new ones
    searched against it) at full size, and the from-scratch search on ``full_sample``
    fingerprints (all pairs; the full-size figure is extrapolated quadratically).
    """
    import tracemalloc

    import pandas as pd

    from covid19_images.manifest.duplicates import find_duplicates

    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, size=(count + added, 32), dtype=np.uint8)
    hashes = raw.tobytes().hex()
    phash = [hashes[i * 64 : (i + 1) * 64] for i in range(count + added)]
    frame = pd.DataFrame(
        {
            "image_id": [f"{i:016x}" for i in range(count + added)],
            "sha256": [f"s{i}" for i in range(count + added)],
            "pixel_sha256": [f"p{i}" for i in range(count + added)],
            "phash": phash,
            "path": "",
            "format": "png",
        }
    )
    results: dict = {"fingerprints": count, "added": added}
    sample = frame.iloc[:full_sample]
    started, cpu = time.perf_counter(), time.process_time()
    find_duplicates(sample)
    full = time.perf_counter() - started
    results["full_search_sample_cpu_s"] = round(time.process_time() - cpu, 2)
    results["full_search_sample"] = full_sample
    results["full_search_sample_s"] = round(full, 2)
    results["full_search_extrapolated_s"] = round(full * (count / full_sample) ** 2)
    # the index of `count` fingerprints, as a previous sync left it (built from its stored form)
    from covid19_images.manifest.near_index import EDGE_COLUMNS, NearIndex

    settings = find_duplicates(frame.iloc[:2]).index.settings
    index = NearIndex(
        # keyed as find_duplicates keys a search node: perceptual hash | file that stands for it
        pd.Series(frame["phash"].to_numpy()[:count], index=(frame["phash"] + "|" + frame["sha256"]).to_numpy()[:count]),
        pd.DataFrame(columns=list(EDGE_COLUMNS)),
        settings,
    )
    started, cpu = time.perf_counter(), time.process_time()
    result = find_duplicates(frame, index=index)
    results["incremental_s"] = round(time.perf_counter() - started, 2)
    results["incremental_cpu_s"] = round(time.process_time() - cpu, 2)
    tracemalloc.start()  # a second run: tracing allocations slows pandas down several times
    find_duplicates(frame, index=index)
    results["incremental_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20)
    tracemalloc.stop()
    results["groups"] = int((result.groups != "").sum())
    return results


def bench_read(rows: int, base: Path, rounds: int = 3) -> dict:
    """Reading a ``rows``-row manifest: ``read_manifest`` and ``load_manifest`` against the old C-engine read."""
    import pandas as pd

    from covid19_images.core.schema import MANIFEST_COLUMNS
    from covid19_images.loaders import load_manifest
    from covid19_images.manifest.io import MANIFEST_FILE, manifest_bytes, read_manifest

    root = base / f"read-{rows}"
    target = root / MANIFEST_FILE
    if not target.is_file():
        rng = np.random.default_rng(0)

        def hexes(width: int) -> list[str]:
            return [rng.integers(0, 256, width // 2, dtype=np.uint8).tobytes().hex() for _ in range(rows)]

        frame = pd.DataFrame({c: [""] * rows for c in MANIFEST_COLUMNS})
        frame["image_id"] = hexes(16)
        frame["source"] = SOURCE
        frame["source_commit"] = "a" * 40
        frame["path"] = [f"datasets/{SOURCE}/images/{_name(i)}" for i in range(rows)]
        frame["git_blob"], frame["sha256"], frame["pixel_sha256"], frame["phash"] = (
            hexes(40),
            hexes(64),
            hexes(64),
            hexes(64),
        )
        frame["format"], frame["width"], frame["height"], frame["frames"] = "png", "1024", "1024", "1"
        frame["modality"], frame["view"], frame["label"], frame["finding"] = "xray", "PA", "normal", "No Finding"
        frame["patient_id"] = [f"{SOURCE}:{i // 7}" for i in range(rows)]
        frame["age"], frame["sex"], frame["license"] = "45", "M", "CC0-1.0"
        frame["split_group"], frame["split"] = frame["patient_id"], "train"
        frame["extra"] = '{"follow_up":"3"}'
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(manifest_bytes(frame))
        (root / "sources.yaml").write_text("sources: []\n", encoding="utf-8")

    old = best_of(lambda: pd.read_csv(target, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8"), rounds)
    new = best_of(lambda: read_manifest(root), rounds)
    loaded = best_of(lambda: load_manifest(root), rounds)
    return {
        "rows": rows,
        "c_engine_wall_cpu_s": old,
        "read_manifest_wall_cpu_s": new,
        "load_manifest_wall_cpu_s": loaded,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_sync":
        _child_sync(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, action="append", help="images in the generated upstream (repeatable)")
    parser.add_argument("--base", type=Path, default=PROJECT / "build" / "bench-sync")
    parser.add_argument("--dup-only", action="store_true", help="only the duplicate-search benchmark")
    parser.add_argument(
        "--cli", action="store_true", help="time the `covid19-images sync` process with every source registered"
    )
    parser.add_argument("--cores", type=int, action="append", default=[], help="with --cli: a first sync on N cores")
    parser.add_argument("--cli-only", action="store_true", help="only the --cli measurement")
    parser.add_argument("--no-dup", action="store_true", help="skip the duplicate-search benchmark")
    parser.add_argument("--fingerprints", type=int, default=1_000_000)
    parser.add_argument("--full-sample", type=int, default=50_000)
    parser.add_argument("--added", type=int, default=1_000)
    parser.add_argument("--read", type=int, default=0, help="also time reading a manifest of this many rows")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    args.base.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    if args.cli or args.cli_only:
        for size in args.size or [50_000]:
            results[f"cli_{size}"] = bench_cli(size, args.base.resolve(), cores=tuple(args.cores))
            print(json.dumps(results[f"cli_{size}"]), flush=True)
    if not args.dup_only and not args.cli_only:
        for size in args.size or [50_000]:
            results[f"sync_{size}"] = bench_sync(size, args.base)
            print(json.dumps(results[f"sync_{size}"]), flush=True)
    if args.read and not args.cli_only:
        results["read"] = bench_read(args.read, args.base)
        print(json.dumps(results["read"]), flush=True)
    if not args.no_dup and not args.cli_only:
        results["duplicates"] = bench_duplicates(args.fingerprints, args.full_sample, args.added)
        print(json.dumps(results["duplicates"]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
