"""``DIR/<split>/<label>/<key>.<ext>``: what ``torchvision.datasets.ImageFolder`` and fastai's
``ImageDataLoaders.from_folder`` read.

Originals are reflinks when not resized where the file system shares blocks (btrfs, XFS:
no extra space), plain copies elsewhere; never hard links, which would let an edit of an
exported file change the data under ``datasets/`` (see
:func:`~covid19_images.export.guard.clone_file`). Note that ``ImageFolder`` numbers the
classes it finds in each split folder, so a split missing a label gets other indices;
``export.json`` holds the export-wide list.
"""

from __future__ import annotations

from covid19_images.export.common import ExportRequest, iter_payloads, write_bytes
from covid19_images.export.guard import clone_file
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
            clone_file(data.source, target)
        else:
            write_bytes(target, data.data)
        paths.append(relative)
    return paths, {}
