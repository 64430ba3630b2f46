"""COVID-CT-MD's slice-level infection labels: one ``finding`` ``infection`` (1/0) per labelled slice.

``Slice-level-labels-updated-1.npy`` (or the original ``Slice-level-labels.npy``) is a
(79 patients x 200) 0/1 array: row = the row's *position* in ``Index.csv`` (its ``Label Index``
skips 43, so indexing by that column would shift every later patient), column = the slice's rank
in Slice Location order (not file-name order: ``_10.dcm`` sorts before ``_2.dcm``), padded to 200.
``Folder/ID`` names the patient folder under ``COVID-19 subjects/`` or ``Cap subjects/``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from covid19_images.core.annotation import Annotation
from covid19_images.sources.catalog.covid_ct_md import slices_of
from covid19_images.sources.dicom_header import read_header, text
from covid19_images.sources.parsing import SourceContext, iter_rows

LICENSE = "unknown"
LABEL_FILES = ("Slice-level-labels-updated-1.npy", "Slice-level-labels.npy")
MAX_LABEL_BYTES = 16 * 1024 * 1024
POSITION_TAGS = ("SliceLocation", "ImagePositionPatient", "InstanceNumber", "SeriesInstanceUID")


def _labels(ctx: SourceContext) -> tuple[str, np.ndarray] | None:
    for name in LABEL_FILES:
        if name in ctx.files:
            try:
                if (ctx.directory / name).stat().st_size > MAX_LABEL_BYTES:
                    raise ValueError("larger than the dataset's label array")
                array = np.load(ctx.directory / name, allow_pickle=False)
            except (OSError, ValueError) as err:
                ctx.report(f"cannot read slice labels ({err}); none used", path=name)
                return None
            if array.ndim != 2:
                ctx.report(f"slice labels have shape {array.shape}, not (patients, slices); none used", path=name)
                return None
            return name, array
    return None


def _position(ds) -> float:
    location = text(ds, "SliceLocation")
    if location:
        return float(location)
    return float(text(ds, "ImagePositionPatient").split("\\")[-1] or 0)


def read(ctx: SourceContext) -> Iterator[Annotation]:
    found = _labels(ctx)
    frame = ctx.read_csv("Index.csv") if "Index.csv" in ctx.files else None
    if found is None or frame is None:
        return
    name, array = found
    patients = {folder.split("/")[1]: files for folder, files in slices_of(ctx).items()}
    for position, row in enumerate(iter_rows(frame)):
        patient = row.get("Folder/ID", "").strip()
        where = str(position + 2)
        if position >= array.shape[0]:
            ctx.report(
                f"Index.csv row {where} has no row in {name} ({array.shape[0]} rows)", path="Index.csv", row=where
            )
            continue
        if patient not in patients:
            continue  # not fetched (a subset), or a name the folders lack: nothing to attach to
        ranked = []
        for file in patients[patient]:
            ds = read_header(ctx, file, POSITION_TAGS)
            try:
                ranked.append((_position(ds), file))
            except (TypeError, ValueError):
                ctx.report("no Slice Location or Image Position: slice label not attached", path=file)
        ranked.sort()
        if len(ranked) > array.shape[1]:
            ctx.report(f"{len(ranked)} slices, {name} labels {array.shape[1]}: the rest unlabelled", path=patient)
        for k, (_where, file) in enumerate(ranked[: array.shape[1]]):
            yield Annotation(
                "finding", name, "infection", [("", file)], str(int(array[position, k] != 0)), "annotator",
                license=LICENSE, row=f"Index.csv:{where}",
            )  # fmt: skip
