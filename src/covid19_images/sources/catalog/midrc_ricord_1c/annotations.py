"""RICORD-1c's study labels from the MD.ai export: one annotation per reader label and image.

The export (``*_annotations_labelgroup_all_*.json``, minified) has ``labelGroups`` - one per
reader pseudonym (``Tiger``, ``Lion``, ``Bear``, ``Dragon``), plus ``Default group`` and
``Adjudication`` - each with its own label ids for the same eight names, and
``datasets[0].annotations`` keyed by ``StudyInstanceUID`` with no series or image (study
scope, no boxes). One study carries several readers' labels; choosing among them (majority,
adjudication) is the consumer's job, so every label is kept with its reader as ``rater``:

* ``Typical/Indeterminate/Atypical Appearance``, ``Negative for Pneumonia``, ``Invalid
  Study`` -> ``finding`` (value ``1``), name in snake case;
* ``Mild/Moderate/Severe Opacities (n lung zones)`` -> ``severity`` ``opacity_grade`` 1/2/3
  (names contain double spaces: ``Mild Opacities  (1-2 lung zones)``).

An annotation applies to every image of its study (found by the images' StudyInstanceUID).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator

from covid19_images.core.annotation import Annotation
from covid19_images.sources.catalog.midrc_ricord_1c import studies
from covid19_images.sources.dicom_header import read_header, text
from covid19_images.sources.parsing import SourceContext

LICENSE = "CC-BY-NC-4.0"
MAX_EXPORT_BYTES = 256 * 1024 * 1024
GRADES = {"mild opacities": 1, "moderate opacities": 2, "severe opacities": 3}


def export_files(ctx: SourceContext) -> list[str]:
    return [f for f in ctx.files if re.search(r"annotations_labelgroup_all.*\.json$", f)]


def label_names(groups: list) -> dict[str, tuple[str, str]]:
    """label id -> (reader, label name with single spaces)."""
    names: dict[str, tuple[str, str]] = {}
    for group in groups:
        reader = " ".join(str(group.get("name", "")).split()).lower().replace(" group", "")
        for label in group.get("labels", []):
            names[str(label.get("id"))] = (reader, " ".join(str(label.get("name", "")).split()))
    return names


def _annotation(name: str, reader: str, path: str, image: str, where: str) -> Annotation | None:
    base = re.sub(r"\s*\(.*\)$", "", name).lower()
    if base in GRADES:
        return Annotation(
            "severity", path, "opacity_grade", [("", image)], str(GRADES[base]), reader, license=LICENSE, row=where
        )
    return Annotation(
        "finding", path, re.sub(r"\W+", "_", base).strip("_"), [("", image)], "1", reader, license=LICENSE, row=where
    )


def read(ctx: SourceContext) -> Iterator[Annotation]:
    files = export_files(ctx)
    if not files:
        return
    images: dict[str, list[str]] = defaultdict(list)
    for paths in studies(ctx).values():
        for relative in paths:
            ds = read_header(ctx, relative, ("StudyInstanceUID",))
            if ds is not None and text(ds, "StudyInstanceUID"):
                images[text(ds, "StudyInstanceUID")].append(relative)
    for path in files:
        try:
            if (ctx.directory / path).stat().st_size > MAX_EXPORT_BYTES:
                raise ValueError("larger than any MD.ai export of this collection")
            export = json.loads((ctx.directory / path).read_text(encoding="utf-8"))
            names = label_names(export["labelGroups"])
            annotations = export["datasets"][0]["annotations"]
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
            ctx.report(f"MD.ai export unusable ({type(err).__name__}: {err})", path=path, level="error")
            continue
        unknown = 0
        for item in annotations:
            reader, name = names.get(str(item.get("labelId")), ("", ""))
            uid = str(item.get("StudyInstanceUID", ""))
            if not name:
                unknown += 1
                continue
            for image in images.get(uid, ()):
                made = _annotation(name, reader, path, image, f"{path} annotation {item.get('id', '')}")
                if made is not None:
                    yield made
        if unknown:
            ctx.report(f"{unknown} annotations name a label id no label group defines; skipped", path=path)
