"""COVID-19 Radiography Database (Kaggle ``tawsifurrahman/covid19-radiography-database``).

Four class folders (COVID, Normal, Lung_Opacity, Viral Pneumonia), each with a workbook
``<Class>.metadata.xlsx`` (sheet ``Sheet1``: ``FILE NAME``, ``FORMAT``, ``SIZE``, ``URL``).
The release changed its naming three times, and this parser reads all three:

* current ("2nd update", March 2021): ``COVID-19_Radiography_Dataset/<Class>/images/<Class>-<n>.png``
  and the lung masks beside them in ``<Class>/masks/`` (read by ``annotations.py``);
* "first update": ``COVID/COVID (<n>).png``, ``NORMAL/NORMAL (<n>).png`` (space, parentheses);
* first release: ``COVID-19(<n>)``, ``NORMAL-<n>``, ``Viral Pneumonia-<n>``.

So a workbook row and an image are matched by class and **number** (the last integer of the
name), never by spelling: the Normal workbook says ``NORMAL-1`` while the image is
``Normal-1.png``. The header has spaces (``FILE NAME``); the class and file names contain a
space (``Viral Pneumonia``). A workbook that cannot be opened (two of the three committed
first-release workbooks lack their first 4,096 bytes) is one error naming the file; its images
are still indexed from their folder, without URL. Rows without an image (a partial download)
and images without a row are each summarised in one problem per class.

``URL`` names where an image came from, not which image: BIMCV/PadChest, ieee8023, RSNA,
Kermany ("chest-xray-pneumonia"), SIRM, eurorad, ml-workgroup, COVID-CXNet. It is kept in
``extra.url`` and, for the upstreams this project knows, ``extra.origin`` names that source;
no per-image identity is published, so copies are found by the perceptual duplicate search.
COVIDx names the COVID images ``COVID(<n>).png`` (source ``sirm``; ``extra.covidx_name``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.sources.parsing import SourceContext
from covid19_images.sources.structured import UnreadableFile, read_first_sheet

WORKBOOK_SUFFIX = ".metadata.xlsx"
#: class key (lower-case workbook stem) -> raw finding
CLASSES = {
    "covid": "COVID-19",
    "covid-19": "COVID-19",
    "normal": "Normal",
    "lung_opacity": "Lung_Opacity",
    "viral pneumonia": "Viral Pneumonia",
}
#: a URL fragment -> the source it names (catalog names where the project has the upstream)
ORIGINS = (
    ("bimcv", "bimcv-covid19-pos"),
    ("ieee8023", "ieee8023-covid-chestxray"),
    ("rsna-pneumonia", "rsna-pneumonia"),
    ("paultimothymooney/chest-xray-pneumonia", "zhanglab-pediatric-xray"),
    ("sirm.org", "sirm"),
    ("eurorad", "eurorad"),
    ("ml-workgroup", "ml-workgroup"),
    ("covid-cxnet", "covid-cxnet"),
)
MAX_WORKBOOK_BYTES = 32 * 1024 * 1024
_NUMBER = re.compile(r"(\d+)\D*$")


def number_of(name: str) -> int | None:
    """The image number in any of the three naming generations (``COVID (12)``, ``COVID-19(12)``, ``Normal-12``)."""
    match = _NUMBER.search(PurePosixPath(name).stem if "." in name[-5:] else name)
    return int(match.group(1)) if match else None


def origin_of(url: str) -> str:
    lowered = url.lower()
    return next((origin for fragment, origin in ORIGINS if fragment in lowered), "")


def read_workbook(ctx: SourceContext, relative: str) -> list[tuple[int, dict[str, str]]] | None:
    """``(sheet row number, {column: value})`` of the first sheet; None after reporting an unreadable file."""
    try:
        header, found = read_first_sheet(ctx.directory / relative, MAX_WORKBOOK_BYTES, str.upper)
    except UnreadableFile as err:
        ctx.report(
            f"cannot read the workbook ({err}); its images are indexed from their folder, without URL",
            path=relative,
            level="error",
        )
        return None
    if "FILE NAME" not in header:
        ctx.report(f"workbook has no 'FILE NAME' column (header {header}); rows not used", path=relative)
        return None
    return found


def class_folders(ctx: SourceContext) -> dict[str, tuple[str, str]]:
    """Class folder (relative) -> (class key, the workbook beside it or ``""``)."""
    directories: set[str] = set()
    for relative in ctx.files:
        directories.update(str(parent) for parent in PurePosixPath(relative).parents if str(parent) != ".")
    workbooks = {
        (str(PurePosixPath(f).parent), PurePosixPath(f).name[: -len(WORKBOOK_SUFFIX)].lower()): f
        for f in ctx.files
        if f.lower().endswith(WORKBOOK_SUFFIX)
    }
    folders: dict[str, tuple[str, str]] = {}
    for folder in sorted(directories):
        path = PurePosixPath(folder)
        key = path.name.lower()
        if key in CLASSES and path.parent.name.lower() not in CLASSES:
            folders[folder] = (key, workbooks.get((str(path.parent), key), ""))
    return folders


def images_of(ctx: SourceContext, folder: str) -> dict[int, str]:
    """number -> image path: ``<folder>/images/*.png`` (current release) or ``<folder>/*.png``."""
    found: dict[int, str] = {}
    for relative in ctx.files_under(folder):
        path = PurePosixPath(relative)
        inside = str(path.parent)
        if path.suffix.lower() != ".png" or inside not in (folder, f"{folder}/images"):
            continue
        number = number_of(path.name)
        if number is None:
            ctx.report("image name carries no number; not indexed", path=relative)
            continue
        if number in found:
            ctx.report(f"two images numbered {number} ({found[number]}); the first kept", path=relative)
            continue
        found[number] = relative
    return found


def parse(ctx: SourceContext) -> Iterator[Entry]:
    """One entry per class-folder image, with its workbook row where one names it."""
    folders = class_folders(ctx)
    if not folders:
        ctx.report("no class folder (COVID, Normal, Lung_Opacity, Viral Pneumonia) found", level="error")
    for folder, (key, workbook) in folders.items():
        images = images_of(ctx, folder)
        rows = read_workbook(ctx, workbook) if workbook else None
        by_number: dict[int, tuple[int, dict[str, str]]] = {}
        for number, record in rows or ():
            image_number = number_of(record.get("FILE NAME", ""))
            if image_number is None:
                ctx.report(
                    f"FILE NAME {record.get('FILE NAME')!r} carries no number", workbook, f"{workbook} row {number}"
                )
                continue
            by_number.setdefault(image_number, (number, record))
        if rows is not None:
            absent = sorted(set(by_number) - set(images))
            if absent:
                ctx.report(
                    f"{len(absent)} rows name an image that is not in {folder}/ (e.g. number {absent[0]}); not indexed",
                    path=workbook,
                )
            unlisted = sorted(set(images) - set(by_number))
            if unlisted:
                ctx.report(f"{len(unlisted)} images have no workbook row (e.g. {images[unlisted[0]]})", path=folder)
        finding = CLASSES[key]
        label, detail = ctx.label(finding, folder, "")
        for image_number, relative in sorted(images.items()):
            row_number, record = by_number.get(image_number, (0, {}))
            url = record.get("URL", "")
            extra: dict = {"url": url} if url else {}
            if origin_of(url):
                extra["origin"] = origin_of(url)
            if key == "covid":
                extra["covidx_name"] = f"COVID({image_number}).png"
            yield Entry(
                path=relative,
                modality="xray",
                finding=finding,
                label=label,
                label_detail=detail,
                row=f"{workbook} row {row_number}" if row_number else "",
                extra=extra,
            )
