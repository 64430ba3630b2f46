"""UCSD-AI4H/COVID-CT: CT slices cropped from COVID-19 papers, and non-COVID CT.

Layout: the label is the folder, ``CT_COVID/`` or ``CT_NonCOVID/``. Upstream ships them
only as ``Images-processed/CT_COVID.zip`` and ``CT_NonCOVID.zip``; copies elsewhere (the
sample we test on) have them unpacked under ``Images/``. The official split is
``Data-split/{COVID,NonCOVID}/{train,val,test}CT_{COVID,NonCOVID}.txt``, one bare file
name per line. Patient metadata (``COVID-CT-MetaInfo.xlsx``, sometimes converted to
``.csv``: ``File name``, ``Patient ID``, ``Age``, ``Gender`` ...) is used when present.

Why it looks the way it does:

* The manifest indexes files, not archive members, and a parser never writes into a
  submodule. With only the zips present we report what to run instead of indexing nothing
  silently.
* Any folder holding ``CT_COVID``/``CT_NonCOVID`` is accepted (``Images-processed/`` after
  unzipping in place, ``Images/`` in copies); macOS zip debris (``__MACOSX/``, ``._*``)
  is skipped. If two such folders exist, the one with more images wins and the other is
  reported, so no picture is counted twice.
* Grouping key (``patient_id``) without MetaInfo: file names are
  ``<paper>-p<page>-<figure>[%k].png``, so ``p23`` is a *page*, not a patient (that is
  the "p23 in all three splits" of UCSD-AI4H/COVID-CT#11; upstream split by MetaInfo's
  patient numbers). One paper can show several patients (``...-p16-109%0/%1/%2`` are
  patients 3, 4 and 5) and one patient several figures, so the paper is the smallest
  unit that surely keeps a patient's slices together: ``paper:<paper>``. Non-COVID names
  are ``<n>%<k>.jpg`` (crops ``k`` of one source figure ``n``, never split apart by the
  official lists) or ``<n>.png``: ``noncovid:<n>``. With MetaInfo, its Patient ID is used instead.
* Split lists are checked both ways: names that resolve to no file are summarised per
  list, files in no list are reported one by one, a name in two lists is reported.
* The images are figure crops (PNG RGBA/RGB/L, JPEG), not DICOM; they are all axial.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.files import is_image_name, largest_copy
from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_finding, harmonise_sex, parse_age
from covid19_images.sources.parsing import SourceContext, column, iter_rows

#: label folder -> (class name used by the split lists, raw finding)
CLASSES: dict[str, tuple[str, str]] = {"CT_COVID": ("COVID", "COVID-19"), "CT_NonCOVID": ("NonCOVID", "NonCOVID")}
SPLIT_DIR = "Data-split"
_SPLIT_FILE = re.compile(r"^(?P<split>train|val|test)CT_(?P<cls>COVID|NonCOVID)\.txt$")
_PAPER = re.compile(r"^(?P<paper>.+?)-p\d+-\d+")
METAINFO = ("COVID-CT-MetaInfo.csv", "COVID-CT-MetaInfo.xlsx")
_EXAMPLES = 5


def _is_image(relative: str) -> bool:
    return is_image_name(relative) and PurePosixPath(relative).parent.name in CLASSES


def image_roots(ctx: SourceContext) -> dict[str, list[str]]:
    """Folders holding CT_COVID/CT_NonCOVID -> their image files."""
    roots: dict[str, list[str]] = defaultdict(list)
    for relative in ctx.files:
        if _is_image(relative):
            roots[PurePosixPath(relative).parent.parent.as_posix()].append(relative)
    return dict(roots)


def grouping_key(name: str, folder: str) -> str:
    """Smallest unit that surely keeps one patient's images together (see module docstring)."""
    stem = PurePosixPath(name).stem
    if folder == "CT_NonCOVID":
        return f"noncovid:{stem.split('%')[0]}"
    match = _PAPER.match(stem)
    paper = match.group("paper") if match else re.sub(r"_\d+$", "", stem.split("%")[0])
    return f"paper:{paper}"


def read_split_lists(ctx: SourceContext) -> dict[str, list[tuple[str, str]]]:
    """``{list file: [(split, name), ...]}`` for every readable official split list."""
    lists: dict[str, list[tuple[str, str]]] = {}
    for relative in ctx.files_under(SPLIT_DIR):
        match = _SPLIT_FILE.match(PurePosixPath(relative).name)
        if not match:
            continue
        try:
            text = (ctx.directory / relative).read_bytes().decode("utf-8-sig", errors="replace")
        except OSError as err:
            ctx.report(f"cannot read split list: {err}", path=relative, level="error")
            continue
        names = [line.strip() for line in text.splitlines() if line.strip()]
        lists[relative] = [(match.group("split"), name) for name in names]
    return lists


def _class_of_list(relative: str) -> str:
    match = _SPLIT_FILE.match(PurePosixPath(relative).name)
    return f"CT_{match.group('cls')}" if match else ""


def official_splits(
    ctx: SourceContext, lists: dict[str, list[tuple[str, str]]], files: dict[tuple[str, str], str]
) -> dict[str, str]:
    """Map image path -> split; report unresolved names (summarised per list) and names in two lists."""
    split_of: dict[str, str] = {}
    listed_in: dict[str, str] = {}
    by_name: dict[str, list[str]] = defaultdict(list)
    for (_folder, name), path in files.items():
        by_name[name].append(path)
    for list_file, rows in sorted(lists.items()):
        folder = _class_of_list(list_file)
        missing: list[str] = []
        for split, name in rows:
            path = files.get((folder, name))
            if path is None:
                elsewhere = by_name.get(name, [])
                if elsewhere:
                    ctx.report(f"{name} is listed for {folder} but lies in {elsewhere[0]}", path=list_file)
                else:
                    missing.append(name)
                continue
            if path in split_of and split_of[path] != split:
                ctx.report(
                    f"{name} is also in {listed_in[path]} ({split_of[path]}); kept {split_of[path]}", path=list_file
                )
                continue
            split_of[path] = split
            listed_in[path] = list_file
        if missing:
            examples = ", ".join(missing[:_EXAMPLES]) + (" ..." if len(missing) > _EXAMPLES else "")
            ctx.report(
                f"{len(missing)} of {len(rows)} names resolve to no file in {folder}/: {examples}", path=list_file
            )
    return split_of


def read_metainfo(ctx: SourceContext) -> dict[str, dict[str, str]]:
    """``File name`` -> row of COVID-CT-MetaInfo (csv, or xlsx when openpyxl is installed)."""
    import pandas as pd

    for relative in METAINFO:
        if not ctx.exists(relative):
            continue
        if relative.endswith(".csv"):
            frame = ctx.read_csv(relative)
        else:
            try:
                sheets = pd.read_excel(ctx.directory / relative, sheet_name=None, dtype=str)
            except ImportError:
                message = "present but unread: reading .xlsx needs openpyxl; patients grouped by paper instead"
                ctx.report(message, path=relative)
                return {}
            except Exception as err:  # noqa: BLE001 - a corrupt workbook must not stop the images
                ctx.report(f"cannot read: {err}; patients grouped by paper instead", path=relative)
                return {}
            frame = pd.concat(list(sheets.values()), ignore_index=True).fillna("") if sheets else None
            if frame is not None:
                frame["_row"] = [f"{relative} row {i + 2}" for i in range(len(frame))]
        if frame is None:
            return {}
        rows = {column(row, "File name", "image", "filename"): row for row in iter_rows(frame)}
        return {name: row for name, row in rows.items() if name}
    return {}


def _entry(path: str, split: str, meta: dict[str, str] | None) -> Entry:
    folder = PurePosixPath(path).parent.name
    _cls, finding = CLASSES[folder]
    label, detail, _known = harmonise_finding(finding)
    key = grouping_key(path, folder)
    patient = column(meta, "Patient ID", "patient") if meta else ""
    return Entry(
        path=path,
        modality="ct",
        finding=finding,
        label=label,
        label_detail=detail,
        view="axial",
        patient_id=f"{folder}:{patient}" if patient else key,
        age=parse_age(column(meta, "Age")) if meta else None,
        sex=harmonise_sex(column(meta, "Gender", "Sex")) if meta else "",
        official_split=split,
        row=meta.get("_row", "") if meta else "",
        extra={"group": key} if patient else {},
    )


def _report_no_images(ctx: SourceContext) -> None:
    """Say why nothing can be indexed: the images only inside the zips (and how to unpack them), or absent."""
    zips = [f for f in ctx.files if PurePosixPath(f).name in {f"{c}.zip" for c in CLASSES}]
    if not zips:
        ctx.report("no CT_COVID/ or CT_NonCOVID/ image folders found", level="error")
        return
    folders = sorted({PurePosixPath(z).parent.as_posix() for z in zips})
    commands = " && ".join(f"unzip -n {PurePosixPath(z).name}" for z in zips)
    where = f"{ctx.spec.path}/{folders[0]}" if folders[0] != "." else ctx.spec.path
    ctx.report(
        f"the images are only inside {', '.join(zips)}; the manifest indexes files, not archive members. "
        f"Unpack them next to the zips (`cd {where} && {commands}`: creates CT_COVID/ and CT_NonCOVID/ "
        "as untracked files, nothing tracked changes) and rebuild",
        path=zips[0],
        level="error",
    )


def parse(ctx: SourceContext) -> Iterator[Entry]:
    roots = image_roots(ctx)
    if not roots:
        _report_no_images(ctx)
        return
    root = largest_copy(roots)
    for other in sorted(set(roots) - {root}):
        ctx.report(f"a second copy of the image folders; {root}/ is indexed instead", path=other)
    files = {(PurePosixPath(p).parent.name, PurePosixPath(p).name): p for p in roots[root]}
    lists = read_split_lists(ctx)
    if not lists:
        ctx.report(f"no split lists under {SPLIT_DIR}/; official_split left empty")
    split_of = official_splits(ctx, lists, files)
    metainfo = read_metainfo(ctx)
    for path in sorted(roots[root]):
        split = split_of.get(path, "")
        if lists and not split:
            ctx.report("image is in no split list", path=path)
        yield _entry(path, split, metainfo.get(PurePosixPath(path).name))
