"""Shard bookkeeping shared by the torch and TF streaming loaders (no framework imported).

Which shard files a split has (from an export's ``export.json``, or a brace-expanded URL
pattern), and the per-epoch plan of which rank and worker reads which shard, with the
per-worker budgets that give every DDP rank the same number of steps (see
``loaders.torch.streaming``).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

INDEX_FILE = "export.json"


def _index(directory: Path) -> dict[str, Any]:
    path = directory / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {INDEX_FILE}: is it a covid19-images export?")
    return json.loads(path.read_text(encoding="utf-8"))


def resolve_shards(shards: str, split: str | None, fmt: str) -> tuple[list[str], list[int] | None, list[str] | None]:
    """``(urls, per-shard sample counts or None, classes or None)`` for ``split`` of ``shards``."""
    directory = Path(shards)
    if directory.is_dir():
        index = _index(directory)
        if index.get("format") != fmt:
            raise ValueError(f"{directory} holds a {index.get('format')!r} export; this loader reads {fmt!r} exports")
        splits = [split] if split is not None else list(index["shards"])
        if split is not None and split not in index["shards"]:
            raise ValueError(f"{directory} has no {split!r} shards (splits: {', '.join(index['shards'])})")
        entries = [e for s in splits for e in index["shards"][s]]
        return [os.fspath(directory / e["file"]) for e in entries], [int(e["count"]) for e in entries], index["classes"]
    from webdataset.shardlists import expand_urls

    urls = expand_urls(str(shards))
    if not urls:
        raise ValueError(f"shard pattern {shards!r} names no file")
    return urls, None, None


def mix(*numbers: int) -> int:
    """One 63-bit seed from several ints (NumPy SeedSequence: well mixed, stable everywhere)."""
    return int(np.random.SeedSequence([int(n) & 0xFFFFFFFF for n in numbers]).generate_state(2, np.uint64)[0] >> 1)


def plan(count: int, seed: int, epoch: int, shuffle: bool, world: int, workers: int) -> list[list[list[int]]]:
    """``plan[rank][worker]`` = the shard positions that worker reads this epoch (see module docstring)."""
    order = list(range(count))
    if shuffle:
        random.Random(mix(seed, epoch, 0x5EED)).shuffle(order)
    per_rank = [order[r::world] for r in range(world)]
    return [[mine[w::workers] for w in range(workers)] for mine in per_rank]


def budgets(layout: list[list[list[int]]], counts: list[int], equalize: str | None) -> list[int] | None:
    """Samples per worker index, the same on every rank (None: no limit, every sample once)."""
    if equalize is None:
        return None
    totals = [[sum(counts[i] for i in shards) for shards in rank] for rank in layout]
    pick = min if equalize == "drop" else max
    return [pick(rank[w] for rank in totals) for w in range(len(totals[0]))]


def check_stream_options(options: Any) -> None:
    """Row filters belong to the export: refuse them with ``shards=`` instead of ignoring them."""
    given = [
        name for name in ("labels", "sources", "views", "licenses", "classes") if getattr(options, name) is not None
    ]
    if options.cache:
        given.append("cache")
    if given:
        raise ValueError(
            f"{', '.join(given)} cannot be applied to shards=: the rows of an export are fixed when it is written "
            "(covid19-images export --sources/--views/--labels/--licenses); leave them out or export again"
        )
