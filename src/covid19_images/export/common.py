"""What every exporter shares: the rows to export, their bytes, shard plans and index files.

Row selection is the loaders' own (:func:`covid19_images.loaders._select.select`), with
``split=None`` so one pass yields train, val and test with the class indices the loaders
use. Exporters only decide *where* bytes go; *which* rows and *which* bytes is decided
here, once, so the four formats cannot disagree.

Determinism: items are ordered by split (train, val, test) then by the loaders' order
(source, path, frame); every file written here is built from that order and from the
manifest alone (no clock, no user name, no random draw), so two exports of the same
inputs are byte-identical.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covid19_images.core.schema import MANIFEST_COLUMNS, SPLITS
from covid19_images.loaders._options import Options, make_options
from covid19_images.loaders._pixels import load_item
from covid19_images.loaders._select import Selection, check_available, select
from covid19_images.manifest.csv_text import frame_csv_bytes

#: formats copied byte for byte when no ``image_size`` is asked (every image library reads them)
PASSTHROUGH = {"jpeg": "jpg", "png": "png"}
#: columns of DIR/manifest.csv after the manifest's own
EXTRA_COLUMNS = ("frame", "label_index", "export_path")
INDEX_FILE = "export.json"
MANIFEST_NAME = "manifest.csv"
DEFAULT_SHARD_SIZE = 1000


@dataclass(frozen=True)
class ExportRequest:
    """What to export; the same filters and defaults as the loaders (dedup on, unknown left out)."""

    root: Path
    out: Path
    format: str
    modality: str = "xray"
    split_scheme: str = "default"
    image_size: tuple[int, int] | None = None
    sources: tuple[str, ...] | None = None
    views: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None
    licenses: tuple[str, ...] | None = None
    shard_size: int = DEFAULT_SHARD_SIZE

    def options(self) -> Options:
        return make_options(
            self.modality,
            root=self.root,
            split=None,
            split_scheme=self.split_scheme,
            image_size=self.image_size,
            sources=self.sources,
            views=self.views,
            labels=self.labels,
            licenses=self.licenses,
        )


@dataclass
class ExportResult:
    """Where the export went and what it holds."""

    out: Path
    format: str
    classes: tuple[str, ...]
    counts: dict[str, int]
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        sizes = ", ".join(f"{split} {n}" for split, n in self.counts.items())
        return f"exported {sum(self.counts.values())} images ({sizes}) as {self.format} to {self.out}"


def selected_items(request: ExportRequest) -> Selection:
    """The loaders' selection over every split, ordered train, val, test; rows without a split dropped."""
    from covid19_images.loaders._manifest import read_manifest_typed
    from covid19_images.manifest.build import read_manifest

    manifest = read_manifest(request.root)
    if manifest is None:
        read_manifest_typed(request.root)  # raises the loaders' explanatory error
    selection = select(manifest, request.options())  # type: ignore[arg-type]
    check_available(selection)
    items = selection.items
    items = items[items["split"].isin(SPLITS)].copy()
    items["_order"] = items["split"].map({s: i for i, s in enumerate(SPLITS)})
    items = items.sort_values(["_order", "source", "path", "frame"], kind="mergesort").drop(columns="_order")
    return Selection(items=items.reset_index(drop=True), classes=selection.classes, root=selection.root)


def item_key(image_id: str, frame: int, frames: int) -> str:
    """A file-name-safe key: the image id, plus the frame for multi-frame files (no dots: WebDataset
    splits a member name at its first dot)."""
    return f"{image_id}_f{int(frame):05d}" if frames > 1 else str(image_id)


def keys(items: pd.DataFrame) -> list[str]:
    frames = pd.to_numeric(items["frames"], errors="coerce").fillna(1).astype(int)
    return [item_key(i, f, n) for i, f, n in zip(items["image_id"], items["frame"], frames, strict=True)]


@dataclass(frozen=True)
class Payload:
    """One item's image: ``source`` set when it is the original file unchanged (hard-linkable),
    ``data`` always holds the bytes to write."""

    ext: str
    source: str | None
    data_or_none: bytes | None

    @property
    def data(self) -> bytes:
        if self.data_or_none is not None:
            return self.data_or_none
        assert self.source is not None
        return Path(self.source).read_bytes()


def encode_png(pixels: np.ndarray) -> bytes:
    """Lossless PNG; grey when every channel is equal (X-rays stay one channel). Pillow writes no
    timestamp, so the bytes depend on the pixels only."""
    from PIL import Image

    if pixels.ndim == 3 and (pixels.shape[2] == 1 or (pixels == pixels[..., :1]).all()):
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def payload(row: Any, image_size: tuple[int, int] | None) -> Payload:
    """The bytes of one item: the original file when not resized and it is a single-frame JPEG/PNG;
    otherwise the loaders' pixels (same decode, same resize as training) as PNG. DICOM, NIfTI,
    videos and GIF frames always become PNG: image libraries and the Hub viewer cannot read them."""
    frames = int(pd.to_numeric(row["frames"], errors="coerce") or 1) if str(row["frames"]) else 1
    fmt = str(row["format"])
    if frames <= 1:
        check_unchanged(row)
    if image_size is None and fmt in PASSTHROUGH and frames <= 1:
        return Payload(PASSTHROUGH[fmt], str(row["file"]), None)
    pixels = load_item(str(row["file"]), int(row["frame"]), fmt, image_size, 3)
    return Payload("png", None, encode_png(pixels))


class ChangedFileError(RuntimeError):
    """A file under ``datasets/`` no longer has the bytes the manifest recorded."""


def check_unchanged(row: Any) -> None:
    """Refuse to export a file whose bytes differ from the manifest's ``sha256`` (a checkout edited
    or checked out at another commit since the last sync): the export would claim a hash, a label
    and a licence for a picture they do not describe."""
    expected = str(row["sha256"])
    if not expected:
        return
    with open(str(row["file"]), "rb") as handle:
        found = hashlib.file_digest(handle, "sha256").hexdigest()
    if found != expected:
        raise ChangedFileError(
            f"{row['source']}: {row['path']} changed since the manifest was built (sha256 {found[:12]}, "
            f"manifest {expected[:12]}): run `covid19-images sync` (or restore the checkout) before exporting"
        )


def iter_payloads(
    items: pd.DataFrame, image_size: tuple[int, int] | None, desc: str, *, window: int = 64
) -> Iterator[tuple[str, Any, Payload]]:
    """``(key, row, payload)`` per item in export order, with a progress bar.

    Decoding and PNG encoding run on a thread pool (Pillow and the decoders release the GIL)
    over a bounded window of ``window`` items, so memory stays flat and the order, hence
    every output byte, stays the same whatever the number of threads.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from covid19_images.core.progress import show_progress
    from covid19_images.core.workers import default_workers

    rows = [row for _, row in items.iterrows()]
    names = keys(items)
    pool = ThreadPoolExecutor(max_workers=default_workers())
    finished = False
    try:
        with tqdm(total=len(rows), desc=desc, unit="img", leave=False, disable=not show_progress()) as bar:
            for start in range(0, len(rows), window):
                block = rows[start : start + window]
                for key, row, data in zip(
                    names[start : start + window], block, pool.map(lambda r: payload(r, image_size), block), strict=True
                ):
                    bar.update(1)
                    yield key, row, data
        finished = True
    finally:
        # A writer that fails (a full disk) abandons this generator; the garbage collector may then
        # close it from one of the pool's own threads, which cannot join itself: only a complete
        # run waits for the threads, an abandoned one cancels what is queued and returns.
        pool.shutdown(wait=finished, cancel_futures=not finished)


def row_record(row: Any, image_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The manifest row of an item, typed (:func:`covid19_images.export.schema.typed_record`)."""
    from covid19_images.export.schema import typed_record

    return typed_record(row, image_size)


def chunks(count: int, size: int) -> list[range]:
    """``range`` of item positions per shard, ``size`` items each (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"shard size must be >= 1, not {size}")
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_manifest_csv(out: Path, items: pd.DataFrame, export_paths: Sequence[str]) -> None:
    """DIR/manifest.csv: the exported rows (manifest columns), their frame, label index and path inside DIR."""
    frame = items[list(MANIFEST_COLUMNS)].astype(str).copy()
    frame["frame"] = items["frame"].astype(int).to_numpy()
    frame["label_index"] = items["label_index"].astype(int).to_numpy()
    frame["export_path"] = list(export_paths)
    write_bytes(out / MANIFEST_NAME, frame_csv_bytes(frame))


def write_index(
    out: Path, request: ExportRequest, classes: Sequence[str], counts: dict[str, int], shards: dict
) -> None:
    """DIR/export.json: format, options, classes, counts, and per split the shard files with their
    item counts (what the streaming loaders use to give every DDP rank the same number of steps)."""
    data = {
        "format": request.format,
        "modality": request.modality,
        "split_scheme": request.split_scheme,
        "image_size": list(request.image_size) if request.image_size else None,
        "filters": {
            "sources": list(request.sources) if request.sources else None,
            "views": list(request.views) if request.views else None,
            "labels": list(request.labels) if request.labels else None,
            "licenses": list(request.licenses) if request.licenses else None,
        },
        "classes": list(classes),
        "counts": counts,
        "shards": shards,
    }
    from covid19_images.export.schema import record_schema

    schema = record_schema(request.format)
    if schema is not None:
        data["schema"] = schema
    write_bytes(out / INDEX_FILE, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_index(directory: str | os.PathLike) -> dict[str, Any]:
    """DIR/export.json of an export (FileNotFoundError naming the folder when absent)."""
    path = Path(directory) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a covid19-images export (no {INDEX_FILE})")
    return json.loads(path.read_text(encoding="utf-8"))
