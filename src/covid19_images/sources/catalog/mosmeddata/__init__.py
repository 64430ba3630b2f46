"""MosMedData COVID19_1110 (mosmed.ai), a portal source: CT graded CT-0..CT-4, lesion masks for 50.

Written against the real ``dataset_registry.xlsx`` (sheet ``MosMedData COVID19_1110``, 1,110
rows), ``README_EN.md`` and the studies/masks listing in
``../shared/upstream-portal/mosmeddata-covid19-1110/``. Layout once fetched::

    COVID19_1110/dataset_registry.xlsx
    COVID19_1110/studies/CT-1/study_0255.nii.gz
    COVID19_1110/masks/study_0255_mask.nii.gz

Why it looks the way it does:

* The workbook is the index: ``study_id`` (1..1110, not padded), ``category`` ``CT-0``..``CT-4``,
  ``study_file`` and ``mask_file`` with a leading ``/`` relative to the dataset folder (the folder
  holding the workbook, at the top or under ``COVID19_1110/``). The mask cell is missing, not
  empty, on 1,060 rows. A study on disk that the workbook lacks is still indexed from its folder
  name (and reported); a row whose study is missing is reported.
* ``CT-0`` is "normal lung tissue, no CT-signs of viral pneumonia" (README): ``normal`` because
  the dataset says so explicitly. ``CT-1``..``CT-4`` are COVID-19-related findings graded by
  involvement (<25%, 25-50%, 50-75%, >75%): ``covid-19`` with the grade as ``label_detail``; the
  grade itself is an annotation (``severity`` ``mosmed_grade`` 0..4), so ``task="severity"``
  serves it.
* One study per patient (the README: each study is one series of one patient): the study name is
  the patient id. ``extra.mask`` names the study's mask volume, so ``volumes=True`` serves it.
* Licence CC BY-NC-ND 3.0: no derivative may be distributed, so the miniature holds no byte of the
  dataset (synthetic volumes, a workbook of our own in the real layout).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.sources.parsing import SourceContext
from covid19_images.sources.structured import UnreadableFile, read_first_sheet

REGISTRY = "dataset_registry.xlsx"
MAX_WORKBOOK_BYTES = 16 * 1024 * 1024
GRADES = {"CT-0": 0, "CT-1": 1, "CT-2": 2, "CT-3": 3, "CT-4": 4}
_STUDY = re.compile(r"^studies/(?P<grade>CT-[0-4])/(?P<study>study_\d{4})\.nii(\.gz)?$")


def dataset_folder(ctx: SourceContext) -> str | None:
    """The folder holding ``dataset_registry.xlsx`` (``""`` at the top), the shallowest one."""
    found = sorted((f for f in ctx.files if PurePosixPath(f).name == REGISTRY), key=lambda f: (f.count("/"), f))
    return str(PurePosixPath(found[0]).parent).strip(".") if found else None


def read_registry(ctx: SourceContext, relative: str) -> list[tuple[int, dict[str, str]]] | None:
    """``(sheet row number, {column: value})`` of the workbook's first sheet; None after reporting."""
    try:
        header, found = read_first_sheet(ctx.directory / relative, MAX_WORKBOOK_BYTES, str.lower)
    except UnreadableFile as err:
        ctx.report(f"cannot read the registry ({err}); studies indexed from folders", path=relative)
        return None
    missing = {"study_file", "category"} - set(header)
    if missing:
        ctx.report(
            f"registry lacks columns {sorted(missing)} (header {header}); studies indexed from folders", path=relative
        )
        return None
    return found


def _relative(base: str, cell: str) -> str:
    """A registry path (``/studies/CT-1/study_0255.nii.gz``) relative to the source folder."""
    inner = cell.strip().lstrip("/")
    return f"{base}/{inner}" if base else inner


def parse(ctx: SourceContext) -> Iterator[Entry]:
    base = dataset_folder(ctx)
    if base is None:
        ctx.report(f"no {REGISTRY}; nothing to index", level="error")
        return
    prefix = f"{base}/" if base else ""
    studies = {}
    for name in ctx.files:
        if name.startswith(prefix) and (match := _STUDY.match(name[len(prefix) :])):
            studies[name] = match
    registry = read_registry(ctx, prefix + REGISTRY) or []
    listed: set[str] = set()
    for number, record in registry:
        where = f"{prefix}{REGISTRY}:{number}"
        path = _relative(base, record.get("study_file", ""))
        grade = record.get("category", "")
        if grade not in GRADES:
            ctx.report(f"category {grade!r} is not CT-0..CT-4; row skipped", path=prefix + REGISTRY, row=str(number))
            continue
        if path not in studies:
            ctx.report(
                f"study {record.get('study_file')!r} not in the download", path=prefix + REGISTRY, row=str(number)
            )
            continue
        listed.add(path)
        mask = _relative(base, record["mask_file"]) if record.get("mask_file") else ""
        if mask and not ctx.require(mask, str(number), prefix + REGISTRY):
            mask = ""
        yield _entry(path, studies[path].group("study"), grade, where, mask)
    for path in sorted(set(studies) - listed):
        if registry:
            ctx.report("study not in the registry; indexed from its folder", path=path)
        match = studies[path]
        yield _entry(path, match.group("study"), match.group("grade"), "", "")


def _entry(path: str, study: str, grade: str, where: str, mask: str) -> Entry:
    normal = grade == "CT-0"
    return Entry(
        path=path,
        modality="ct",
        finding="normal" if normal else "COVID-19",
        label="normal" if normal else "covid-19",
        label_detail="" if normal else grade,
        view="axial",
        patient_id=study,
        row=where,
        extra={"grade": grade, **({"mask": mask} if mask else {})},
    )
