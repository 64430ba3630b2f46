"""WebDataset tar shards ``DIR/<split>-NNNNNN.tar``: per sample ``<key>.<ext>`` (the image),
``<key>.json`` (its manifest row, numbers typed, ``width``/``height`` of the exported image:
:mod:`covid19_images.export.schema`) and ``<key>.cls`` (its label index, ASCII).

Written with :mod:`tarfile` and fixed metadata (mtime 0, uid/gid 0, no user names, mode
0444, USTAR headers, members in sample order with extensions sorted) so the same rows give
the same bytes; ``webdataset.ShardWriter`` stamps the current time into every header.
Each shard holds one split only; since splits are assigned per split group, no group
spans two splits, so no group spans shards of two splits either.
"""

from __future__ import annotations

import io
import json
import tarfile

from covid19_images.export.common import ExportRequest, chunks, iter_payloads, row_record
from covid19_images.loaders._select import Selection


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:06d}.tar"


def write(request: ExportRequest, selection: Selection) -> tuple[list[str], dict]:
    """Write the shards; return each item's ``<shard>/<member>`` and per split the shard counts."""
    items = selection.items
    paths: list[str] = []
    shards: dict[str, list[dict]] = {}
    payloads = iter_payloads(items, request.image_size, "webdataset")
    # items are ordered by split, so each split is one contiguous run of the payload stream
    for split in dict.fromkeys(items["split"].astype(str)):
        shards[split] = []
        for number, block in enumerate(chunks(int((items["split"] == split).sum()), request.shard_size)):
            name = shard_name(split, number)
            with tarfile.open(request.out / name, "w", format=tarfile.USTAR_FORMAT) as tar:
                for _ in block:
                    key, row, data = next(payloads)
                    record = row_record(row, request.image_size)
                    files = {
                        "cls": str(record["label_index"]).encode("ascii"),
                        "json": json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8"),
                        data.ext: data.data,
                    }
                    for ext in sorted(files):
                        tar.addfile(*_member(f"{key}.{ext}", files[ext]))
                    paths.append(f"{name}/{key}.{data.ext}")
            shards[split].append({"file": name, "count": len(block)})
    return paths, shards
