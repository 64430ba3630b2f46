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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import numpy as np

INDEX_FILE = "export.json"
#: the most read of one json/cls member: a manifest row is a few hundred bytes, never megabytes
MEMBER_BUDGET = 1 << 20
T = TypeVar("T")


class DamagedExport(ValueError):
    """An export folder whose shards are not what its ``export.json`` declares; the message names the file."""


def _index(directory: Path) -> dict[str, Any]:
    path = directory / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {INDEX_FILE}: is it a covid19-images export?")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedExport(f"{path} is empty, cut or not JSON ({err}): export again") from None
    _check_index(path, index)
    return index


def _check_index(path: Path, index: Any) -> None:
    """The shape the exporter writes: classes, and per split a list of ``{file, count}`` inside the folder."""
    from covid19_images.core.paths import lexical_problem

    shards = index.get("shards") if isinstance(index, dict) else None
    classes = index.get("classes") if isinstance(index, dict) else None
    if not isinstance(shards, dict) or not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise DamagedExport(f"{path} is not an export index (no classes list or shards mapping): export again")
    if len(set(classes)) != len(classes):
        raise DamagedExport(f"{path} lists a class twice: export again")
    for split, entries in shards.items():
        for entry in entries if isinstance(entries, list) else [None]:
            name = entry.get("file") if isinstance(entry, dict) else None
            count = entry.get("count") if isinstance(entry, dict) else None
            if not isinstance(name, str) or lexical_problem(name) or type(count) is not int or count < 1:
                raise DamagedExport(
                    f"{path}: shard entry {entry!r} of {split!r} is not a file inside the folder with a count"
                )


def _tar_records(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, {extension: bytes of the small members})`` per sample of a WebDataset tar, images skipped."""
    import tarfile

    samples: dict[str, dict[str, bytes]] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, ext = member.name.partition(".")  # WebDataset: the key ends at the first dot
                sample = samples.setdefault(key, {})
                if ext in ("json", "cls"):  # a regular file (checked above): extractfile gives its stream
                    sample[ext] = cast(IO[bytes], tar.extractfile(member)).read(MEMBER_BUDGET)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DamagedExport(f"{path} is not a readable tar ({err}): export again") from None
    yield from samples.items()


def _check_tar(path: Path, split: str, classes: list[str], count: int, seen: dict[str, str]) -> None:
    """One WebDataset shard is what the export wrote: its declared sample count, samples of its own split
    with a label index in range naming the same class, and no key another shard already holds."""
    found = 0
    for key, sample in _tar_records(path):
        found += 1
        where = f"{path.name}: sample {key}"
        if key in seen:
            raise DamagedExport(f"{where} is also in {seen[key]}: one image would be served twice")
        seen[key] = path.name
        try:
            record, label = json.loads(sample["json"]), int(sample["cls"])
        except (KeyError, ValueError) as err:
            raise DamagedExport(f"{where} has no readable json/cls member ({err})") from None
        if not isinstance(record, dict):
            raise DamagedExport(f"{where}: its json member is not a manifest row")
        if record.get("split") != split:
            raise DamagedExport(f"{where} is a {record.get('split')!r} sample in a {split!r} shard")
        if not 0 <= label < len(classes) or record.get("label") != classes[label]:
            raise DamagedExport(
                f"{where} has label index {label} ({record.get('label')!r}) but the export's classes are {classes}: "
                "shards of another export?"
            )
    if found != count:
        raise DamagedExport(
            f"{path} holds {found} samples, {INDEX_FILE} declares {count}: cut or replaced; export again"
        )


def _check_tfrecord(path: Path, count: int) -> None:
    """The record framing (length, crc, data, crc) of a TFRecord file adds up to its declared count."""
    found, size = 0, path.stat().st_size
    with open(path, "rb") as handle:
        while handle.tell() < size:
            header = handle.read(12)  # length (8 bytes, little-endian), its crc (4)
            if len(header) < 12 or handle.seek(int.from_bytes(header[:8], "little") + 4, os.SEEK_CUR) > size:
                raise DamagedExport(f"{path}: record {found} is cut (file ends inside it): export again")
            found += 1
    if found != count:
        raise DamagedExport(
            f"{path} holds {found} records, {INDEX_FILE} declares {count}: cut or replaced; export again"
        )


def check_export(directory: Path, index: dict[str, Any], fmt: str) -> None:
    """Every shard ``export.json`` lists is there and holds what it declares (see :func:`_check_tar`)."""
    seen: dict[str, str] = {}
    for split, entries in index["shards"].items():
        declared = index.get("counts", {}).get(split)
        if declared is not None and declared != sum(e["count"] for e in entries):
            raise DamagedExport(
                f"{directory / INDEX_FILE}: the {split!r} shards add up to another count than {declared}"
            )
        for entry in entries:
            path = directory / entry["file"]
            if not path.is_file():
                raise DamagedExport(f"{path} is missing ({INDEX_FILE} lists it): export again")
            if fmt == "webdataset":
                _check_tar(path, split, index["classes"], entry["count"], seen)
            elif fmt == "tfrecord":
                _check_tfrecord(path, entry["count"])


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
        check_export(directory, index, fmt)
        entries = [e for s in splits for e in index["shards"][s]]
        return [os.fspath(directory / e["file"]) for e in entries], [int(e["count"]) for e in entries], index["classes"]
    from webdataset.shardlists import expand_urls

    urls = expand_urls(str(shards))
    if not all(urls):  # "a.tar::" would read the working directory as a shard
        raise ValueError(f"shard pattern {shards!r} has an empty part")
    return urls, None, None


def mix(*numbers: int) -> int:
    """One 63-bit seed from several ints (NumPy SeedSequence: well mixed, stable everywhere)."""
    return int(np.random.SeedSequence([int(n) & 0xFFFFFFFF for n in numbers]).generate_state(1, np.uint64)[0] >> 1)


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


def rank_and_world_of(group: tuple[int, int] | None, inherited: tuple[int, int] | None) -> tuple[int, int]:
    """The (rank, world size) a stream reads as: the live process group's, else the one pickled with the
    dataset by the rank that started a spawned/forkserver worker, else a single process (0, 1)."""
    if group is not None:
        return group
    return inherited if inherited is not None else (0, 1)


def rank_samples(layout: list[list[list[int]]], counts: list[int], equalize: str | None, rank: int) -> int:
    """How many samples ``rank`` serves this epoch: its budgets with ``equalize``, else its shards' counts."""
    limits = budgets(layout, counts, equalize)
    if limits is not None:
        return sum(limits)
    return sum(counts[i] for shards in layout[rank] for i in shards)


def equalized(read: Callable[[], Iterable[T]], budget: int | None, where: str) -> Iterator[T]:
    """A worker's samples cut or padded to ``budget`` (None: every sample once).

    ``read()`` reads the worker's shards once; padding reads them again from the start, as
    ``DistributedSampler`` pads. A worker with nothing to read cannot pad: refused, naming ``where``.
    """
    if budget is None:
        yield from read()
        return
    served = 0
    while served < budget:
        before = served
        for sample in read():
            yield sample
            served += 1
            if served >= budget:
                return
        if served == before:
            raise RuntimeError(f"{where} has no shard to pad from: use fewer workers")


def tfrecord_files(
    shards: str, split: str | None, glob: Callable[[str], list[str]]
) -> tuple[list[str], list[str] | None]:
    """The TFRecord files a TF stream reads, in the order every ``tf.distribute`` worker sees, and the classes.

    An export folder: its ``export.json`` list, checked. Anything else is a pattern: brace-expanded,
    each part globbed with ``glob`` (``tf.io.gfile.glob``: local, ``gs://``, ``s3://``), sorted, so
    TF's FILE sharding gives worker i the files i, i+N, ...; a pattern matching nothing is refused.
    """
    if Path(shards).is_dir():
        files, _counts, classes = resolve_shards(shards, split, "tfrecord")
        return files, classes
    from braceexpand import braceexpand

    files = sorted({f for pattern in braceexpand(shards) for f in glob(pattern)})
    if not files:
        raise FileNotFoundError(f"shard pattern {shards!r} matches no file")
    return files, None


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
