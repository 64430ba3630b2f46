"""``DIR/<split>/<label>/<key>.<ext>``: what ``torchvision.datasets.ImageFolder`` and fastai's
``ImageDataLoaders.from_folder`` read.

Originals are hard links when not resized (no copy of a 40 GB collection; a hard link is
the same bytes, so the export stays byte-identical), falling back to a copy across file
systems. Note that ``ImageFolder`` numbers the classes it finds in each split folder, so
a split missing a label gets other indices; ``export.json`` holds the export-wide list.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from covid19_images.export.common import ExportRequest, iter_payloads, write_bytes
from covid19_images.loaders._select import Selection


def write(request: ExportRequest, selection: Selection) -> tuple[list[str], dict]:
    """Write every item; return each item's path inside the export and (no) shard table."""
    paths: list[str] = []
    items = selection.items
    for key, row, data in iter_payloads(items, request.image_size, "imagefolder"):
        relative = f"{row['split']}/{row['label']}/{key}.{data.ext}"
        target = request.out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if data.source is not None:
            try:
                os.link(data.source, target)
            except OSError:  # another file system, or links not allowed
                shutil.copyfile(data.source, target)
        else:
            write_bytes(target, data.data)
        paths.append(relative)
    return paths, {}


def same_file(a: Path, b: Path) -> bool:
    """True when two paths are one inode (a hard link was made)."""
    return os.path.samefile(a, b)
