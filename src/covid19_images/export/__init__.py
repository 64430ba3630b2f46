"""Assembled datasets: the loaders' selection written out as ImageFolder, WebDataset shards,
a Hugging Face datasets repository or TFRecord files, with a manifest and a datasheet.

One call, :func:`export`, does the same for every format: select the rows exactly as the
loaders do (same filters, dedup, ``unknown`` left out, same class indices), hand them to
the format's writer, then write ``manifest.csv`` (the rows and where each went),
``export.json`` (classes, counts, shard files with their counts) and ``DATASHEET.md``.
Every step is deterministic, so two exports of the same inputs are byte-identical.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from pathlib import Path

from covid19_images.core.failpoints import checkpoint
from covid19_images.export.common import (
    DEFAULT_SHARD_SIZE,
    ChangedFileError,
    ExportRequest,
    ExportResult,
    read_index,
    selected_items,
    write_bytes,
    write_index,
    write_manifest_csv,
)
from covid19_images.export.guard import (
    ExportBusy,
    ExportError,
    check_destination,
    check_replaceable,
    destination_lock,
    disk_full,
    is_disk_full,
    root_reading,
    staging,
    swap_in,
    verify_export,
)
from covid19_images.loaders._options import image_size_tuple

FORMATS = ("imagefolder", "webdataset", "hf", "tfrecord")


def _names(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value)
    return names or None


def export(
    out: str | os.PathLike,
    format: str,
    *,
    root: str | os.PathLike | None = None,
    modality: str = "xray",
    split_scheme: str = "default",
    image_size: int | tuple[int, int] | None = None,
    sources: str | Iterable[str] | None = None,
    views: str | Iterable[str] | None = None,
    labels: str | Iterable[str] | None = None,
    licenses: str | Iterable[str] | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    overwrite: bool = False,
    wait: bool = False,
) -> ExportResult:
    """Export the ``modality`` images of the manifest to ``out`` as ``format`` (see :data:`FORMATS`).

    ``image_size`` None keeps the original files (JPEG/PNG byte for byte; other formats
    decoded to PNG); an int or (height, width) squashes like the loaders do and stores PNG.
    ``shard_size`` is the number of images per WebDataset tar / Parquet / TFRecord file.
    ``out`` must be absent or empty, or with ``overwrite`` a previous export, which is replaced
    only once the new one is complete and verified (see :mod:`covid19_images.export.guard`:
    where ``out`` may be, the locks, the swap). ``wait`` waits for a running sync of the root
    instead of refusing.
    """
    from covid19_images.core.paths import find_root

    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, not {shard_size}")
    target = Path(out).resolve()
    data_root = find_root(root)
    check_destination(target, data_root)
    check_replaceable(target, overwrite)
    with destination_lock(target), root_reading(data_root, wait=wait):
        check_replaceable(target, overwrite)  # again under the lock: another export may have finished meanwhile
        try:
            with staging(target) as building:
                request = ExportRequest(
                    root=data_root,
                    out=building,
                    format=format,
                    modality=modality,
                    split_scheme=split_scheme,
                    image_size=image_size_tuple(image_size),
                    sources=_names(sources),
                    views=_names(views),
                    labels=_names(labels),
                    licenses=_names(licenses),
                    shard_size=int(shard_size),
                )
                counts, classes = _build(request)
                verify_export(building)
                files = sorted(str(p.relative_to(building)) for p in building.rglob("*") if p.is_file())
                checkpoint("export.verified")  # the concurrency tests stop an export here, holding its locks
                swap_in(building, target)
        except OSError as err:
            if is_disk_full(err):
                raise disk_full(target, err) from err
            raise
    return ExportResult(out=target, format=format, classes=classes, counts=counts, files=files)


def _build(request: ExportRequest) -> tuple[dict[str, int], tuple[str, ...]]:
    """Write the whole export into ``request.out`` (the staging folder); return counts and classes."""
    selection = selected_items(request)
    writer = importlib.import_module(f"covid19_images.export.{request.format}")
    paths, shards = writer.write(request, selection)
    items = selection.items
    counts = {split: int((items["split"] == split).sum()) for split in dict.fromkeys(items["split"].astype(str))}
    write_manifest_csv(request.out, items, paths)
    write_index(request.out, request, selection.classes, counts, shards)
    sheet = _datasheet(request, selection, paths)
    write_bytes(request.out / "DATASHEET.md", sheet.encode("utf-8"))
    if request.format == "hf":
        _write_card(request, selection, shards, sheet)
    _write_croissant(request, selection)
    return counts, selection.classes


def _meta(request: ExportRequest) -> dict:
    return {
        "format": request.format,
        "modality": request.modality,
        "split_scheme": request.split_scheme,
        "image_size": request.image_size,
        "filters": {
            "sources": request.sources,
            "views": request.views,
            "labels": request.labels,
            "licenses": request.licenses,
        },
    }


def _datasheet(request: ExportRequest, selection, paths: list[str]) -> str:
    from covid19_images.export.datasheet import render

    return render(selection.items, paths, selection.classes, request.root, _meta(request))


def _write_croissant(request: ExportRequest, selection) -> None:
    """croissant.json (MLCommons Croissant) of the export, written last: it hashes every file it lists."""
    from covid19_images.export.croissant_export import write_export_croissant
    from covid19_images.sources.registry import load_registry

    registry = load_registry(request.root)
    cited = {s: registry[s].citation.strip() for s in set(selection.items["source"]) if s in registry}
    write_export_croissant(
        request.out, {**_meta(request), "version": _release_at_head(request.root)}, selection.items, cited
    )


def _release_at_head(root: Path) -> str | None:
    """The release tag of the root's HEAD, if HEAD is a release (the export then names that version)."""
    import git

    from covid19_images.manifest.versions import release_tags, version_commit

    try:
        head = git.Repo(root).head.commit.hexsha
        return next((t for t in reversed(release_tags(root)) if version_commit(root, t).hexsha == head), None)
    except (git.GitError, ValueError):
        return None


def _write_card(request: ExportRequest, selection, shards: dict, sheet: str) -> None:
    """README.md of the Hugging Face layout: YAML header + the datasheet as the card body."""
    import yaml

    from covid19_images.export.hf import card_header, split_bytes
    from covid19_images.sources.registry import load_registry

    items = selection.items
    licences = sorted(set(items["license"].astype(str)))
    registry = load_registry(request.root)
    cited = {s: registry[s].citation.strip() if s in registry else "" for s in sorted(set(items["source"]))}
    sizes = split_bytes(request.out, shards)
    header = card_header(selection.classes, shards, licences, len(items), request.modality, cited, sizes)
    citations = [f"- **{s}**: {text}" for s, text in cited.items() if text]
    body = sheet
    if citations:
        body += "\n## Citation\n\nCite every source you use:\n\n" + "\n".join(citations) + "\n"
    text = "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000) + "---\n\n" + body
    write_bytes(request.out / "README.md", text.encode("utf-8"))


__all__ = [
    "FORMATS",
    "ChangedFileError",
    "ExportBusy",
    "ExportError",
    "ExportRequest",
    "ExportResult",
    "export",
    "read_index",
]
