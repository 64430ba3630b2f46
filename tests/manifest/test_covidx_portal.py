"""The COVIDx schemes over the portal sources' miniatures: every listed image the miniatures hold is served.

A root whose ``datasets/`` holds the COVID-Net label files and the portal miniatures (fetched from a
loopback portal, see ``fetched_miniature_root``) is built into a manifest; the expected images are derived here from
the label files and the folders with plain string rules, one per COVIDx naming, independent of
the parsers: RSNA ``<patientId>.png`` is ``stage_2_train_images/<patientId>.dcm``; RICORD
``MIDRC-RICORD-1C-<MRN>-<uid5>-<i>.png`` is the ``i``-th DICOM of the study folder ending in
``<uid5>``; the Radiography DB's ``COVID(<n>).png`` is ``COVID/images/COVID-<n>.png``; SBU's
name is its Data Retriever folder path joined by ``-`` with spaces as ``_`` (:func:`sbu_name`);
BIMCV's drops ``-corrected``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from covid19_images.manifest.build import build_manifest, read_manifest, write_manifest
from covid19_images.manifest.split_schemes import resolve_labels, resolve_split
from covid19_images.quality.report import build_report, render_text
from covid19_images.sources.registry import load_registry
from covid19_images.testing.portal_miniatures import fetched_miniature_root
from covid19_images.testing.portal_server import running_with_kaggle_token

PORTAL = ("rsna-pneumonia", "covid19-radiography-db", "midrc-ricord-1c", "covid19-ny-sbu", "bimcv-covid19-pos")
SERVED = {"covid-19": "covid-19", "positive": "covid-19", "pneumonia": "pneumonia", "normal": "normal"}
pytestmark = pytest.mark.xdist_group("covidx-portal")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The portal sources pinned and fetched from a loopback portal (BIMCV, a manual source, ``--from`` a folder)."""
    root = tmp_path_factory.mktemp("covidx-portal") / "root"
    names = ["covidx-splits", *PORTAL, "covidx-cxr4", "covidx-cxr3"]
    with running_with_kaggle_token("covidx-token") as server:  # the Kaggle API token, as users set it
        fetched_miniature_root(root, server, names)
    write_manifest(root, build_manifest(root, load_registry(root), progress=False))
    yield root


def _files(root: Path, source: str) -> list[str]:
    base = root / "datasets" / source
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())


def sbu_name(folder: Path, path: str) -> str:
    """COVIDx's name of an SBU image: its Data Retriever folders joined by ``-``, spaces as ``_``. A fetch
    lands ``<pid>/<StudyUID>/<SeriesUID>/``: the descriptive folder names are then the Data Retriever's
    ``MM-DD-YYYY-NA-<StudyDescription>-<last 5 of the UID>`` and ``<n>.000000-<SeriesDescription>-<last 5>``."""
    parts = path[:-4].split("/")
    if parts[1][:1].isdigit() and "." in parts[1]:  # UID folders
        ds = pydicom.dcmread(folder / path, stop_before_pixels=True)
        date = f"{ds.StudyDate[4:6]}-{ds.StudyDate[6:]}-{ds.StudyDate[:4]}"
        study = f"{date}-NA-{ds.StudyDescription}-{ds.StudyInstanceUID[-5:]}"
        series = f"{ds.SeriesNumber}.000000-{ds.get('SeriesDescription') or 'NA'}-{ds.SeriesInstanceUID[-5:]}"
        parts = [parts[0], study, series, parts[3]]
    else:  # the Data Retriever's own layout, under the collection's folder
        parts = parts[1:]
    return "-".join(parts).replace(" ", "_") + ".jpg"


def held_path(root: Path, source: str, name: str) -> tuple[str, str] | None:
    """(catalog source, path) of the image a COVIDx 9A name means, if the folders hold it."""
    if source in ("rsna", "rnsa"):
        path = f"stage_2_train_images/{name[:-4]}.dcm"
        return ("rsna-pneumonia", path) if path in _files(root, "rsna-pneumonia") else None
    if source == "sirm":
        number = re.fullmatch(r"COVID\((\d+)\)\.png", name).group(1)
        path = f"COVID-19_Radiography_Dataset/COVID/images/COVID-{number}.png"
        return ("covid19-radiography-db", path) if path in _files(root, "covid19-radiography-db") else None
    if source == "ricord":
        mrn_tail, index = name.removeprefix("MIDRC-RICORD-1C-")[:-4].rsplit("-", 1)
        mrn, tail = mrn_tail.rsplit("-", 1)
        studies = sorted({p.rsplit("/", 2)[0] for p in _files(root, "midrc-ricord-1c") if f"-{mrn}/" in p})
        for study in studies:
            if study.endswith(tail):  # the Data Retriever folder ends -<tail>, a fetched one is the UID
                dicoms = sorted(p for p in _files(root, "midrc-ricord-1c") if p.startswith(study + "/"))
                return ("midrc-ricord-1c", dicoms[int(index)]) if int(index) < len(dicoms) else None
        return None
    if source == "stonybrook":
        for path in _files(root, "covid19-ny-sbu"):
            if path.endswith(".dcm") and sbu_name(root / "datasets" / "covid19-ny-sbu", path) == name:
                return ("covid19-ny-sbu", path)
        return None
    if source == "bimcv":
        stem = name.replace("-corrected", "")
        return next(
            (("bimcv-covid19-pos", p) for p in _files(root, "bimcv-covid19-pos") if p.endswith("/" + stem)), None
        )
    return None


def expected(root: Path, version: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(source, path) -> (COVIDx split, served label or "own") for every portal image ``version`` lists and we hold."""
    found = {}
    for split in ("train", "test"):
        text = (root / "datasets/covidx-splits/labels" / f"{split}_COVIDx{version}.txt").read_text()
        for line in text.splitlines():
            parts = line.split()
            held = held_path(root, parts[-1], parts[-3]) if parts else None
            if held:  # ``negative`` names no label: the row keeps its own ("own")
                found[held] = (split, SERVED.get(parts[-2].lower(), "own"))
    return found


def served(root: Path, version: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(source, path) -> (split, label or "own") of every portal row the ``covidx:<version>`` scheme serves."""
    manifest = read_manifest(root)
    split = resolve_split(manifest, f"covidx:{version}", root=root)
    labels = resolve_labels(manifest, f"covidx:{version}", root=root)
    return {
        (s, p.removeprefix(f"datasets/{s}/")): (sp, lab or "own")
        for s, p, sp, lab in zip(manifest["source"], manifest["path"], split, labels, strict=True)
        if s in PORTAL and sp
    }


@pytest.mark.parametrize("version", ["9A", "9B"])
def test_covidx_scheme_serves_every_listed_portal_image_the_miniatures_hold(root: Path, version: str) -> None:
    want = expected(root, version)
    assert {source for source, _path in want} == set(PORTAL)  # every portal source has a listed image
    assert any(split == "test" for split, _label in want.values())  # and the benchmark's test set is reached
    assert served(root, version) == want


def test_torch_loader_serves_the_covidx_test_images_of_the_portal_sources(root: Path) -> None:
    pytest.importorskip("torch")
    from covid19_images.loaders import load

    want = {key for key, (split, _label) in expected(root, "9A").items() if split == "test"}
    dataset = load("xray", "torch", root=root, split="test", split_scheme="covidx:9A")
    served = {
        (s, p.removeprefix(f"datasets/{s}/"))
        for s, p in zip(dataset.manifest["source"], dataset.manifest["path"], strict=True)
    }
    assert want <= served and want


@pytest.mark.parametrize(("release", "holder"), [("CXR-4", "covidx-cxr4"), ("CXR-3", "covidx-cxr3")])
def test_release_scheme_serves_the_release_with_its_own_splits(root: Path, release: str, holder: str) -> None:
    manifest = read_manifest(root)
    split = resolve_split(manifest, f"covidx:{release}", root=root)
    folder = root / "datasets" / holder
    want = {}
    for name in ("train", "val", "test"):
        lines = (folder / f"{name}.txt").read_text().splitlines() if (folder / f"{name}.txt").is_file() else []
        for line in lines:
            if len(line.split()) >= 4:
                want[f"{name}/{line.split()[-3]}"] = name
    rows = manifest["source"] == holder
    paths = manifest.loc[rows, "path"].str.removeprefix(f"datasets/{holder}/")
    assert dict(zip(paths, split[rows], strict=True)) == want
    assert set(split[~rows]) == {""}
    with pytest.raises(ValueError, match="no catalog source holds that release"):
        resolve_split(manifest, "covidx:CXR-9", root=root)


def test_report_counts_listed_held_fetched_served_per_covidx_source_and_names_the_unmatched(root: Path) -> None:
    manifest = read_manifest(root)
    missing = root / "datasets" / "rsna-pneumonia" / next(p for s, p in expected(root, "9A") if s == "rsna-pneumonia")
    missing.rename(missing.with_suffix(".away"))  # a committed row whose file is not fetched
    try:
        report = build_report(root, manifest, privacy=False)
    finally:
        missing.with_suffix(".away").rename(missing)
    by_version = {item["version"]: item for item in report["covidx"]}
    assert {"9A", "9B", "CXR-3", "CXR-4"} <= set(by_version)
    nine = by_version["9A"]
    for covidx_source, catalog_source in (("ricord", "midrc-ricord-1c"), ("sirm", "covid19-radiography-db")):
        item = nine["sources"][covidx_source]
        held = sum(1 for s, _p in expected(root, "9A") if s == catalog_source)
        assert item["held_as"] == catalog_source and item["held"] == held == item["fetched"] == item["served"]
        assert item["listed"] == item["held"] + item["unmatched_count"]
        assert len(item["unmatched"]) == min(item["unmatched_count"], 10)
    assert nine["sources"]["ricord"]["unmatched"]  # the miniature holds 5 of the RICORD images 9A lists
    rsna = nine["sources"]["rsna"]
    assert rsna["fetched"] == rsna["held"] - 1 and rsna["served"] == rsna["fetched"]
    assert nine["listed"] == sum(i["listed"] for i in nine["sources"].values())
    text = render_text(report)
    assert "listed / held here / fetched / served" in text and "unmatched: " in text
