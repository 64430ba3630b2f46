"""RICORD-1a's expert annotations from the MD.ai export: per slice and per volume.

The export (``*_annotations_labelgroup_all_*.json``) has RICORD-1c's structure (the real 1c file
is in ``../shared/upstream-portal/midrc-ricord-1c/``; the 1a file is not public outside TCIA):
``labelGroups`` - one per reader pseudonym - each with labels (``id``, ``name``, ``scope``
``INSTANCE``/``SERIES``/``STUDY``, ``type`` ``LOCAL``/``GLOBAL``), and ``datasets[].annotations``
keyed by ``StudyInstanceUID``, ``SeriesInstanceUID`` and ``SOPInstanceUID``. Read as:

* a ``LOCAL`` label with ``data.vertices`` (a freeform outline on one slice) -> a ``mask`` on that
  slice whose ``value`` is ``outline:<annotation id>`` (the loaders draw the outline filled at the
  slice's size: ``task="segmentation", mask_source="ricord-1a"``) and a ``box`` of its bounds; with
  ``data.x/y/width/height`` -> a ``box``; the slice is found by its SOPInstanceUID;
* a ``GLOBAL`` label -> a ``finding`` (value ``1``) on its slice (INSTANCE), on every slice of its
  series (SERIES: the volume) or of its study (STUDY);
* every annotation keeps its reader as ``rater``; choosing among readers is the consumer's job.

An annotation naming a slice, series or study that is not here (a partial download) is counted
and reported once; an unreadable export is one error naming the file. A local annotation whose
series is here but whose slice is not one of that series' slices (or is a slice of another
series) cannot be placed in the series' mask volume: it is a problem naming its row (annotation
id), not joined. The real 1a export is not public; MD.ai's layout of local annotations (series and
slice UIDs, ``data.vertices`` in the slice's pixels, ``data`` null on some rows) is the one
RICORD-1a's users read (e.g. ``amid``'s ``MIDRC`` loader places each outline by its
SOPInstanceUID's position in the series and skips null ``data``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator

from covid19_images.core.annotation import Annotation
from covid19_images.imaging.masks import OUTLINE_PREFIX
from covid19_images.sources.catalog.midrc_ricord_1c.annotations import export_files, label_names
from covid19_images.sources.dicom_header import read_header, text
from covid19_images.sources.parsing import SourceContext

LICENSE = "CC-BY-NC-4.0"
MAX_EXPORT_BYTES = 256 * 1024 * 1024
MAX_VERTICES = 100_000


def _slices(ctx: SourceContext) -> tuple[dict[str, str], dict[str, list[str]], dict[str, list[str]]]:
    """SOPInstanceUID -> path; SeriesInstanceUID -> paths; StudyInstanceUID -> paths."""
    by_sop: dict[str, str] = {}
    by_series: dict[str, list[str]] = defaultdict(list)
    by_study: dict[str, list[str]] = defaultdict(list)
    for relative in ctx.files:
        if not relative.lower().endswith(".dcm"):
            continue
        ds = read_header(ctx, relative, ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"))
        if ds is None:
            continue
        by_sop[text(ds, "SOPInstanceUID")] = relative
        by_series[text(ds, "SeriesInstanceUID")].append(relative)
        by_study[text(ds, "StudyInstanceUID")].append(relative)
    return by_sop, by_series, by_study


def outline_box(data: object) -> tuple[float, float, float, float] | None:
    """The bounds of an outline (``vertices``) or a rectangle (``x, y, width, height``); None if neither."""
    if not isinstance(data, dict):
        return None
    try:
        if "vertices" in data:
            points = data["vertices"]
            if not 2 <= len(points) <= MAX_VERTICES:
                return None
            xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
            box = (min(xs), min(ys), max(xs), max(ys))
        else:
            x, y = float(data["x"]), float(data["y"])
            box = (x, y, x + float(data["width"]), y + float(data["height"]))
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return box if box[0] >= 0 and box[1] >= 0 and box[2] > box[0] and box[3] > box[1] else None


def _scopes(export: dict) -> dict[str, tuple[str, str]]:
    """label id -> (scope, type), upper case."""
    return {
        str(label.get("id")): (str(label.get("scope", "")).upper(), str(label.get("type", "")).upper())
        for group in export.get("labelGroups", [])
        for label in group.get("labels", [])
    }


def read(ctx: SourceContext) -> Iterator[Annotation]:
    files = export_files(ctx)
    if not files:
        return
    by_sop, by_series, by_study = _slices(ctx)
    for path in files:
        try:
            if (ctx.directory / path).stat().st_size > MAX_EXPORT_BYTES:
                raise ValueError("larger than any MD.ai export of this collection")
            export = json.loads((ctx.directory / path).read_text(encoding="utf-8"))
            names, scopes = label_names(export["labelGroups"]), _scopes(export)
            items = [a for dataset in export["datasets"] for a in dataset["annotations"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            ctx.report(f"MD.ai export unusable ({type(err).__name__}: {err})", path=path, level="error")
            continue
        missing = unusable = 0
        for item in items:
            reader, name = names.get(str(item.get("labelId")), ("", ""))
            scope, kind = scopes.get(str(item.get("labelId")), ("", ""))
            where = f"{path} annotation {item.get('id', '')}"
            snake = re.sub(r"\W+", "_", name.lower()).strip("_")
            if kind == "LOCAL":
                image = by_sop.get(str(item.get("SOPInstanceUID") or ""))
                box = outline_box(item.get("data"))
                series = str(item.get("SeriesInstanceUID") or "")
                if box is None:
                    unusable += 1
                elif series in by_series and image not in by_series[series]:
                    sop = item.get("SOPInstanceUID")
                    message = f"slice {sop} is not one of the {len(by_series[series])} slices of series {series}"
                    ctx.report(f"{message}; outline not joined", path=path, row=where)
                elif image is None:
                    missing += 1
                else:
                    yield Annotation(
                        "box", path, snake, [("", image)], "1", reader, box=box, license=LICENSE, row=where
                    )
                    if "vertices" in (item.get("data") or {}):  # the outline itself, drawn by the loaders
                        outline = f"{OUTLINE_PREFIX}{item.get('id', '')}"
                        yield Annotation(
                            "mask", path, snake, [("", image)], outline, reader, license=LICENSE, row=where
                        )
                continue
            if scope == "INSTANCE":
                images = [by_sop[s]] if (s := str(item.get("SOPInstanceUID") or "")) in by_sop else []
            elif scope == "SERIES":
                images = by_series.get(str(item.get("SeriesInstanceUID") or ""), [])
            else:
                images = by_study.get(str(item.get("StudyInstanceUID") or ""), [])
            if not images or not name:
                missing += 1
            for image in sorted(images):
                yield Annotation("finding", path, snake, [("", image)], "1", reader, license=LICENSE, row=where)
        if missing:
            ctx.report(f"{missing} annotations name a label, slice, series or study not here; not joined", path=path)
        if unusable:
            ctx.report(f"{unusable} local annotations without a usable outline; skipped", path=path)
