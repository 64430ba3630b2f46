"""The Croissant document of one export (``<export>/croissant.json``), built with :mod:`.croissant`.

Written last by :func:`covid19_images.export.export`, so it lists what is really on disk:
every top-level file with its sha256 (shards, ``manifest.csv``, ``export.json``, the
datasheet), the rows of ``manifest.csv`` typed (record set ``images``), the label vocabulary,
and for ImageFolder and WebDataset the pictures themselves (record set ``image_files``,
decoded by ``mlcroissant``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from covid19_images.core.schema import MANIFEST_COLUMNS
from covid19_images.export.croissant import (
    CROISSANT_FILE,
    data_file,
    document,
    labels_record_set,
    rows_record_set,
    to_bytes,
)

#: encodingFormat of the files an export writes, by extension
ENCODINGS = {
    ".tar": "application/x-tar",
    ".parquet": "application/x-parquet",
    ".tfrecord": "application/x-tfrecord",
    ".csv": "text/csv",
    ".json": "application/json",
    ".md": "text/markdown",
}
IMAGE_ENCODINGS = {"png": "image/png", "jpg": "image/jpeg"}


def image_files(out: Path, format: str, shard_ids: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The exported pictures as a FileSet and a record set ``image_files`` (the decoded image and its path).

    ImageFolder: ``<split>/<class>/<key>.<ext>`` on disk; WebDataset: the members of the tar shards
    (``mlcroissant`` extracts them). Other formats hold the pictures inside Parquet/TFRecord rows.
    """
    if format == "imagefolder":
        present = {p.suffix.lstrip(".") for p in out.glob("*/*/*") if p.is_file()}
        includes = [f"*/*/*.{ext}" for ext in sorted(present & set(IMAGE_ENCODINGS))]
        contained: dict[str, Any] = {}
    elif format == "webdataset" and shard_ids:
        includes = [f"*.{ext}" for ext in sorted(IMAGE_ENCODINGS)]
        contained = {"containedIn": [{"@id": shard} for shard in shard_ids]}
    else:
        return [], []
    if not includes:
        return [], []
    file_set = {
        "@type": "cr:FileSet",
        "@id": "pictures",
        "name": "pictures",
        "description": "The exported pictures (PNG, or the original JPEG when not resized)."
        + (
            " mlcroissant 1.1 extracts the shards into $CROISSANT_CACHE/extract under a name made from the "
            "shard's file name only: clear it (or set CROISSANT_CACHE per export) before reading another export, "
            "or it serves the previous export's pictures."
            if contained
            else ""
        ),
        **contained,
        "encodingFormat": sorted(set(IMAGE_ENCODINGS.values())),
        "includes": includes,
    }
    record_set = {
        "@type": "cr:RecordSet",
        "@id": "image_files",
        "name": "image_files",
        "description": "One record per exported picture: the decoded image and its file name (key of manifest.csv).",
        "field": [
            {
                "@type": "cr:Field",
                "@id": f"image_files/{name}",
                "name": name,
                "dataType": data_type,
                "source": {"fileSet": {"@id": "pictures"}, "extract": {"fileProperty": prop}},
            }
            for name, data_type, prop in (("image", "sc:ImageObject", "content"), ("file_name", "sc:Text", "filename"))
        ],
    }
    return [file_set], [record_set]


def write_export_croissant(
    out: Path, request_meta: Mapping[str, Any], items: pd.DataFrame, citations: Mapping[str, str]
) -> Path:
    """``<export>/croissant.json``: every file written (shards with their sha256), the rows of manifest.csv typed.

    Called last by :func:`covid19_images.export.export`, so it lists what is really on disk.
    """
    from covid19_images.export.common import EXTRA_COLUMNS, MANIFEST_NAME

    out = Path(out)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    files = [
        data_file(out, name, ENCODINGS[Path(name).suffix])
        for name in written
        if "/" not in name and Path(name).suffix in ENCODINGS and name != CROISSANT_FILE
    ]
    distribution: list[Any] = list(files)
    record_sets = [
        rows_record_set(
            "images",
            MANIFEST_NAME,
            (*MANIFEST_COLUMNS, *EXTRA_COLUMNS),
            "One record per exported item: the manifest row, its frame, class index and path in the export.",
        ),
        labels_record_set(),
    ]
    doc = document(
        name=f"covid19-images-{request_meta['modality']}-{request_meta['format']}",
        description=(
            f"A {request_meta['format']} export of the covid19-images {request_meta['modality']} images "
            f"(split scheme {request_meta['split_scheme']}, filters {json.dumps(request_meta['filters'])}): "
            "the loaders' selection, one image per duplicate group, unknown labels left out."
        ),
        version=request_meta.get("version"),
        files=distribution,
        record_sets=record_sets,
        manifest=items,
        citations=citations,
        cite_as="@misc{covid19images, title={covid19-images}, howpublished={\\url{https://github.com/covid19-images/covid19-images}}}",
    )
    shard_ids = [f.id for f in files if f.encoding == ENCODINGS[".tar"]]
    file_sets, picture_sets = image_files(out, request_meta["format"], shard_ids)
    doc["distribution"] += file_sets
    doc["recordSet"] += picture_sets
    path = out / CROISSANT_FILE
    path.write_bytes(to_bytes(doc))
    return path
