"""A million fingerprints: the exact near-duplicate search, from scratch and incremental (issue 23).

Today's method (before issue 23: float32 matrix products of +-1 bit vectors in 1024x8192
tiles, BLAS) and ours (faiss ``IndexBinaryFlat`` range search on a 160-bit prefix, candidates
measured whole; ``manifest/near_index.py``) run on the same random 256-bit fingerprints in one
process, on one core (BLAS and OpenMP limited to one thread), in alternating rounds on a
sample; then ours alone on the whole corpus (today's would take more than an hour: its figure
is extrapolated quadratically from the sample, as before). The corpus has planted near
copies at 0-60 bits so that there are pairs on both sides of the radius to find.

Exactness at full size: for a random sample of rows, every pair with a sampled row found by
the full search must be exactly the pairs a brute-force XOR/popcount over all rows gives
(0 false positives, 0 false negatives). The incremental step is what a sync does when
``--added`` pictures arrive: ``find_duplicates`` with the index of the others.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_duplicates.py --count 1000000 --out build/bench-dup.json

``--volume-slices N`` (issue 22) times the 3-D search instead: ``N`` synthetic CT slice
fingerprints in series of ``--series-slices`` (neighbouring slices a few bits apart, as real
slices are; every 10th series a copy of another with noise), searched by
``manifest.volume_duplicates.volume_edges`` all-pairs (as before: no stored index) and on the
stored slice index of the sync before, which lacked the last series (one series added), plus a
sync that adds nothing; the edges of the two must be equal.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_duplicates.py --volume-slices 200000 --out build/bench-vol.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

RADIUS = 48  # NEAR_CANDIDATE: the search radius of docs/dedup-threshold.md


def corpus(count: int, seed: int = 1):
    """``(bits, copies)``: ``count`` packed 256-bit hashes, random except that every 100th row is a
    near copy (0-60 bits flipped) of a random other row; ``copies`` are the copies' rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 256, size=(count, 32), dtype=np.uint8)
    copies = np.arange(0, count, 100)
    originals = (copies + rng.integers(1, 5000, size=len(copies))) % count
    unpacked = np.unpackbits(bits[originals], axis=1)
    for row, flipped in enumerate(rng.integers(0, 61, size=len(copies)).tolist()):
        unpacked[row, rng.choice(256, size=flipped, replace=False)] ^= 1
    bits[copies] = np.packbits(unpacked, axis=1)
    return bits, copies


def matrix_pairs_within(bits, max_distance: int, rows_per_tile: int = 1024, cols_per_tile: int = 8192):
    """Today's search, as it was in ``near_index.pairs_within`` before issue 23 (all pairs, a < b)."""
    import numpy as np

    def floats(tile):
        return np.where(np.unpackbits(tile, axis=1), np.float32(1), np.float32(-1))

    n, least = len(bits), 256 - 2 * max_distance
    found = []
    for start in range(0, n, rows_per_tile):
        block = floats(bits[start : start + rows_per_tile])
        for col in range(start, n, cols_per_tile):
            dots = block @ floats(bits[col : col + cols_per_tile]).T
            ii, jj = np.nonzero(dots >= least)
            a, b = ii + start, jj + col
            keep = a < b
            found.append(np.column_stack((a[keep], b[keep], np.rint((256 - dots[ii[keep], jj[keep]]) / 2))))
    return np.concatenate(found).astype(np.int64) if found else np.zeros((0, 3), dtype=np.int64)


def timed(call):
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)


def brute_force(bits, rows):
    """Every pair (row, other, distance) within the radius for the sampled ``rows``, by XOR/popcount."""
    import numpy as np

    words = bits.view(np.uint64)
    pairs = set()
    for row in rows.tolist():
        distance = np.bitwise_count(words ^ words[row]).sum(axis=1)
        for other in np.flatnonzero(distance <= RADIUS).tolist():
            if other != row:
                pairs.add((min(row, other), max(row, other), int(distance[other])))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=40_000, help="corpus size of the side-by-side rounds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--added", type=int, default=1_000)
    parser.add_argument("--check", type=int, default=1_000, help="rows whose pairs are checked by brute force")
    parser.add_argument("--skip-full", action="store_true", help="no full-size search")
    parser.add_argument(
        "--part", type=float, default=1.0, help="search the pairs of this fraction of the rows (with all rows)"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--volume-slices", type=int, default=0, help="time the 3-D search on this many slices")
    parser.add_argument("--series-slices", type=int, default=300)
    args = parser.parse_args()
    if args.volume_slices:
        volume_mode(args)
        return

    import faiss
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from covid19_images.manifest.duplicates import find_duplicates
    from covid19_images.manifest.near_index import EDGE_COLUMNS, NearIndex, pairs_within

    faiss.omp_set_num_threads(1)
    threadpool_limits(1)
    results: dict = {"count": args.count, "load_before": os.getloadavg()}
    bits, copies = corpus(args.count)
    sample = bits[: args.sample]
    rounds = []
    for number in range(args.rounds):
        order = ("today", "ours") if number % 2 == 0 else ("ours", "today")
        measured = {}
        for name in order:
            search = (
                (lambda: matrix_pairs_within(sample, RADIUS))
                if name == "today"
                else (lambda: np.column_stack(pairs_within(sample, RADIUS)))
            )
            found, wall, cpu = timed(search)
            measured[name] = {"wall_s": wall, "cpu_s": cpu, "pairs": len(found)}
            measured[f"{name}_pairs"] = {tuple(p) for p in found.tolist()}
        assert measured["today_pairs"] == measured["ours_pairs"], "the two searches disagree"
        rounds.append({name: measured[name] for name in ("today", "ours")})
        print(json.dumps({"round": number, **rounds[-1]}), flush=True)
    best = {name: min(r[name]["cpu_s"] for r in rounds) for name in ("today", "ours")}
    scale = (args.count / args.sample) ** 2
    results["sample"] = {
        "size": args.sample,
        "rounds": rounds,
        "cpu_ratio_best": round(best["today"] / best["ours"], 2),
        "today_extrapolated_cpu_s": round(best["today"] * scale),
        "ours_extrapolated_cpu_s": round(best["ours"] * scale),
    }
    print(json.dumps(results["sample"] | {"rounds": None}), flush=True)

    if not args.skip_full:
        # every pair of the whole corpus (--part 1), or every pair of a random part of its rows
        # with all rows (the same kernel and tiles; the CPU time scales with the pairs measured)
        rng = np.random.default_rng(2)
        part = None if args.part >= 1 else np.sort(rng.choice(args.count, int(args.count * args.part), replace=False))
        (a, b, d), wall, cpu = timed(lambda: pairs_within(bits, RADIUS, part))
        all_pairs = args.count * (args.count - 1) // 2
        rest = 0 if part is None else args.count - len(part)
        measured = all_pairs - rest * (rest - 1) // 2  # pairs with at least one searched row
        results["full"] = {
            "rows_searched": args.count if part is None else len(part),
            "pairs_measured": measured,
            "wall_s": wall,
            "cpu_s": cpu,
            "ns_per_pair_cpu": round(cpu / measured * 1e9, 3),
            "all_pairs_cpu_s": round(cpu * all_pairs / measured),
            "pairs_found": len(a),
            "load_after": os.getloadavg(),
        }
        print(json.dumps(results["full"]), flush=True)
        pool = np.arange(args.count) if part is None else part
        checked = rng.choice(pool, size=min(args.check, len(pool)), replace=False)
        copies_searched = copies if part is None else copies[np.isin(copies, part)]
        checked = np.unique(np.concatenate([checked, copies_searched[: args.check // 10]]))
        sampled = set(checked.tolist())
        found = {
            (x, y, z)
            for x, y, z in zip(a.tolist(), b.tolist(), d.tolist(), strict=True)
            if x in sampled or y in sampled
        }
        expected = brute_force(bits, checked)
        results["exactness"] = {
            "rows_checked": len(checked),
            "pairs_expected": len(expected),
            "false_positives": len(found - expected),
            "false_negatives": len(expected - found),
        }
        print(json.dumps(results["exactness"]), flush=True)

    # a sync adding `added` pictures to an index of `count` (built from its stored form)
    total = args.count + args.added
    extra, _ = corpus(args.added, seed=3)
    extra[::7] = bits[::7][: len(extra[::7])]  # some new pictures are copies of indexed ones
    hexes = np.concatenate([bits, extra]).tobytes().hex()
    phash = [hexes[i * 64 : (i + 1) * 64] for i in range(total)]
    frame = pd.DataFrame(
        {
            "image_id": [f"{i:016x}" for i in range(total)],
            "sha256": [f"s{i:07d}" for i in range(total)],
            "pixel_sha256": [f"p{i}" for i in range(total)],
            "phash": phash,
            "path": "",
            "format": "png",
        }
    )
    settings = find_duplicates(frame.iloc[:2]).index.settings
    keys = (frame["phash"] + frame["sha256"]).to_numpy()[: args.count]
    index = NearIndex(
        pd.Series(frame["phash"].to_numpy()[: args.count], index=keys),
        pd.DataFrame(columns=list(EDGE_COLUMNS)),
        settings,
    )
    _, wall, cpu = timed(lambda: find_duplicates(frame, index=index))
    queries = np.arange(args.count, total)
    both = np.concatenate([bits, extra])
    _, search_wall, search_cpu = timed(lambda: pairs_within(both, RADIUS, queries))
    results["incremental"] = {
        "added": args.added,
        "find_duplicates_wall_s": wall,
        "find_duplicates_cpu_s": cpu,
        "search_only_wall_s": search_wall,
        "search_only_cpu_s": search_cpu,
        "load_after": os.getloadavg(),
    }
    print(json.dumps(results["incremental"]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")


def slice_series(count: int, per_series: int, seed: int = 4) -> list[list[str]]:
    """Series of slice hashes: a random walk of 4-12 flipped bits per slice; every 10th series a copy of
    the one before with 0-6 bits of noise per slice (a re-encoded copy, found by the 3-D search)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    series: list[np.ndarray] = []
    for number in range(max(1, count // per_series)):
        if number % 10 == 9:
            planes = series[-1].copy()
            for row in planes:
                row[rng.choice(256, size=int(rng.integers(0, 7)), replace=False)] ^= 1
        else:
            planes = np.zeros((per_series, 256), dtype=np.uint8)
            planes[0] = rng.integers(0, 2, 256)
            for k in range(1, per_series):
                planes[k] = planes[k - 1]
                planes[k, rng.choice(256, size=int(rng.integers(4, 13)), replace=False)] ^= 1
        series.append(planes)
    return [[bytes(row).hex() for row in np.packbits(planes, axis=1)] for planes in series]


def volume_mode(args) -> None:
    """The 3-D search all-pairs against the stored slice index, alternating rounds (module docstring)."""
    import tempfile

    import faiss
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from covid19_images.manifest.volume_duplicates import volume_edges

    faiss.omp_set_num_threads(1)
    threadpool_limits(1)
    series = slice_series(args.volume_slices, args.series_slices)

    def frame(count: int) -> pd.DataFrame:
        return pd.DataFrame(
            {"modality": "ct", "format": "metaimage", "path": [f"datasets/s/{k}.mha" for k in range(count)],
             "phash": "", "source": "s", "extra": "{}"}
        )  # fmt: skip

    every, before = frame(len(series)), frame(len(series) - 1)
    results: dict = {"slices": sum(map(len, series)), "series": len(series), "load_before": os.getloadavg()}
    rounds = []
    with tempfile.TemporaryDirectory() as folder:
        stored = Path(folder)
        for number in range(args.rounds):
            volume_edges(before, series.__getitem__, index_dir=stored)  # the sync before, untimed
            order = ("all_pairs", "index") if number % 2 == 0 else ("index", "all_pairs")
            measured, edges = {}, {}
            for name in order:
                directory = stored if name == "index" else None
                edges[name], wall, cpu = timed(lambda d=directory: volume_edges(every, series.__getitem__, index_dir=d))
                measured[name] = {"wall_s": wall, "cpu_s": cpu, "edges": len(edges[name][0])}
            same = all(np.array_equal(x, y) for x, y in zip(edges["all_pairs"], edges["index"], strict=True))
            assert same and len(edges["index"][0]), "the index gives other edges than the all-pairs search"
            _, wall, cpu = timed(lambda: volume_edges(every, series.__getitem__, index_dir=stored))
            measured["nothing_new"] = {"wall_s": wall, "cpu_s": cpu}
            rounds.append(measured)
            print(json.dumps({"round": number, **measured}), flush=True)
    best = {name: min(r[name]["cpu_s"] for r in rounds) for name in ("all_pairs", "index", "nothing_new")}
    results |= {"rounds": rounds, "best_cpu_s": best, "load_after": os.getloadavg()}
    results["cpu_ratio_all_pairs_over_index"] = round(best["all_pairs"] / max(best["index"], 1e-3), 1)
    print(json.dumps(results | {"rounds": None}), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
