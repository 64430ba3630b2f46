"""COVID-19 Radiography Database: three naming generations, NORMAL-1 vs Normal-1, corrupt workbooks, URL origins."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import openpyxl
from PIL import Image

from covid19_images.sources.catalog.covid19_radiography_db.annotations import read as read_masks
from covid19_images.sources.parsing import SourceContext, list_files
from tests.conftest import run_parser
from tests.sources.catalog.portal import PORTAL, miniature_copy, needs_portal, portal_spec

SOURCE = "covid19-radiography-db"
REAL = PORTAL / "covid19-radiography-database"
FOLDER_LABEL = {
    "COVID": "covid-19",
    "COVID-19": "covid-19",
    "Normal": "normal",
    "NORMAL": "normal",
    "Lung_Opacity": "pneumonia",
    "Viral Pneumonia": "pneumonia",
}


def workbook_rows(path: Path) -> list[dict]:
    book = openpyxl.load_workbook(path, read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    return [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]


def picture(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("L", (8, 8), len(path.name)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())


def test_miniature_rows_matched_by_number_whatever_the_case_of_the_name(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "radiography")
    base = folder / "COVID-19_Radiography_Dataset"
    expected = {}
    for workbook in base.glob("*.metadata.xlsx"):
        klass = workbook.name[: -len(".metadata.xlsx")]
        for row in workbook_rows(workbook):
            number = int(re.search(r"(\d+)$", row["FILE NAME"]).group(1))
            image = base / klass / "images" / f"{klass}-{number}.png"
            if image.is_file():
                expected[image.relative_to(folder).as_posix()] = (FOLDER_LABEL[klass], row["URL"])
    assert any(r["FILE NAME"].startswith("NORMAL-") for r in workbook_rows(base / "Normal.metadata.xlsx"))

    entries, problems = run_parser(portal_spec(SOURCE), folder)

    got = {e.path: (e.label, e.extra.get("url")) for e in entries}
    assert {p: got[p] for p in expected} == expected
    unlisted = set(got) - set(expected)
    assert unlisted and all(got[p][1] is None for p in unlisted)
    assert any("have no workbook row" in p.message for p in problems)
    assert any("name an image that is not in" in p.message for p in problems)
    origins = {e.extra.get("url"): e.extra.get("origin") for e in entries if e.extra.get("url")}
    for url, origin in origins.items():
        if "rsna" in url:
            assert origin == "rsna-pneumonia"
        if "chest-xray-pneumonia" in url:
            assert origin == "zhanglab-pediatric-xray"
        if "bimcv" in url:
            assert origin == "bimcv-covid19-pos"
    covid = [e for e in entries if "/COVID/" in e.path]
    assert all(e.extra["covidx_name"] == f"COVID({e.path.rsplit('-', 1)[1][:-4]}).png" for e in covid)


def test_miniature_masks_join_their_images(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "radiography")
    masks = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("masks/*.png"))
    ctx = SourceContext(portal_spec(SOURCE), folder, list_files(folder))
    found = list(read_masks(ctx))
    assert sorted(a.path for a in found) == masks and masks
    assert all(a.targets == [("", a.path.replace("/masks/", "/images/"))] and a.kind == "mask" for a in found)
    orphan = folder / masks[0]
    (folder / masks[0].replace("/masks/", "/images/")).unlink()
    ctx = SourceContext(portal_spec(SOURCE), folder, list_files(folder))
    assert orphan.relative_to(folder).as_posix() not in {a.path for a in read_masks(ctx)}
    assert any("mask without an image" in p.message for p in ctx.problems)


@needs_portal
def test_real_current_workbooks_urls_and_origins(tmp_path: Path) -> None:
    folder = tmp_path / "radiography" / "COVID-19_Radiography_Dataset"
    shutil.copytree(REAL / "COVID-19_Radiography_Dataset", folder)
    expected = {}
    for workbook in folder.glob("*.metadata.xlsx"):
        klass = workbook.name[: -len(".metadata.xlsx")]
        for row in workbook_rows(workbook)[::97]:  # a spread of rows through every workbook
            number = int(re.search(r"(\d+)$", row["FILE NAME"]).group(1))
            image = folder / klass / "images" / f"{klass}-{number}.png"
            picture(image)
            expected[image.relative_to(folder.parent).as_posix()] = row["URL"]
    entries, problems = run_parser(portal_spec(SOURCE), folder.parent)
    assert {e.path: e.extra.get("url") for e in entries} == expected
    assert not [p for p in problems if p.level == "error"]
    bimcv = [e for e in entries if "bimcv" in e.extra["url"]]
    assert bimcv and {e.extra["origin"] for e in bimcv} == {"bimcv-covid19-pos"}


@needs_portal
def test_real_corrupt_first_release_workbooks_are_one_error_each_and_their_images_still_index(tmp_path: Path) -> None:
    folder = tmp_path / "radiography"
    folder.mkdir()
    for workbook in (REAL / "v1-release").glob("*.metadata.xlsx"):
        shutil.copy(workbook, folder / workbook.name)
    for name in ("COVID-19(1).png", "COVID-19(2).png"):
        picture(folder / "COVID-19" / name)
    picture(folder / "NORMAL" / "NORMAL-1.png")
    picture(folder / "Viral Pneumonia" / "Viral Pneumonia-1.png")
    broken = []
    for workbook in folder.glob("*.xlsx"):
        try:
            openpyxl.load_workbook(workbook, read_only=True).close()
        except Exception:  # noqa: BLE001 - which ones openpyxl itself cannot open
            broken.append(workbook.name)
    assert len(broken) == 2

    entries, problems = run_parser(portal_spec(SOURCE), folder)

    assert len(entries) == 4
    errors = [p for p in problems if p.level == "error"]
    assert sorted(p.path for p in errors) == sorted(broken)
    assert all("cannot read the workbook" in p.message for p in errors)
    normal = next(e for e in entries if e.path.startswith("NORMAL/"))
    assert "chest-xray-pneumonia" in normal.extra["url"]  # the intact workbook still gives its URL


@needs_portal
def test_real_first_update_names_with_space_and_parentheses(tmp_path: Path) -> None:
    folder = tmp_path / "radiography"
    listing = (REAL / "v2-release" / "FILE_LISTING.tsv").read_text().splitlines()[1:]
    paths = [line.split("\t")[0].removeprefix("data/") for line in listing]
    images = [p for p in paths if p.endswith(".png") and "(1" in p]  # every class, numbers 1, 1x, 1xx ...
    assert {p.split("/")[0] for p in images} == {"COVID", "NORMAL", "Viral Pneumonia"}
    for relative in images:
        picture(folder / relative)
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert sorted(e.path for e in entries) == sorted(images)
    by_folder = {e.path.split("/")[0]: e.label for e in entries}
    assert by_folder == {"COVID": "covid-19", "NORMAL": "normal", "Viral Pneumonia": "pneumonia"}
    assert not [p for p in problems if p.level == "error"]  # no workbook here: folders alone, no error
