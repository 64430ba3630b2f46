"""UCSD-AI4H COVID-CT: label = folder, official split from Data-split/*.txt, paper grouping."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import pytest

from covid19_images.core.schema import Entry, Problem
from covid19_images.sources.catalog.ucsd_covid_ct import grouping_key
from tests.conftest import run_parser

SOURCE = "ucsd-covid-ct"
SAMPLE = "UCSD-AI4H-COVID-CT"
CLASSES = ("CT_COVID", "CT_NonCOVID")


def run(registry, directory: Path) -> tuple[list[Entry], list[Problem]]:
    spec = registry[SOURCE]
    return run_parser(spec, directory)


def split_lists(directory: Path) -> dict[Path, tuple[str, str, list[str]]]:
    """list file -> (split, class folder, names), read without the parser."""
    found = {}
    for path in sorted((directory / "Data-split").rglob("*.txt")):
        split = path.name.split("CT_")[0]
        folder = "CT_" + path.parent.name
        found[path] = (split, folder, [line.strip() for line in path.read_text().splitlines() if line.strip()])
    return found


def paper_by_hand(name: str) -> str:
    stem = name.rsplit(".", 1)[0]
    if stem.startswith("PIIS"):
        return re.match(r"PIIS\d+", stem).group(0)
    return re.split(r"-p\d+-", stem)[0]


def copy_sample(shared: Path, target: Path, images_folder: str = "Images") -> None:
    shutil.copytree(shared / SAMPLE / "Data-split", target / "Data-split")
    shutil.copytree(shared / SAMPLE / "Images", target / images_folder)


@pytest.mark.upstream
def test_sample_labels_splits_and_groups(shared: Path, registry) -> None:
    directory = shared / SAMPLE
    images = {
        p.relative_to(directory).as_posix(): p for folder in CLASSES for p in (directory / "Images" / folder).iterdir()
    }
    assert len(images) > 10
    lists = split_lists(directory)
    assert len(lists) == 6
    entries, problems = run(registry, directory)
    assert sorted(e.path for e in entries) == sorted(images)

    split_of = {}
    for split, folder, names in lists.values():
        for name in names:
            split_of[f"Images/{folder}/{name}"] = split
    for entry in entries:
        folder = entry.path.split("/")[1]
        assert entry.label == ("covid-19" if folder == "CT_COVID" else "other")
        assert entry.official_split == split_of[entry.path]
        assert (entry.modality, entry.view) == ("ct", "axial")
        name = entry.path.rsplit("/", 1)[1]
        if folder == "CT_COVID":
            assert entry.patient_id == f"paper:{paper_by_hand(name)}"
        else:
            assert entry.patient_id == f"noncovid:{name.rsplit('.', 1)[0].split('%')[0]}"

    # one summary per split list for the names whose files are not in the sample
    expected_missing = {
        path.relative_to(directory).as_posix(): sum(
            1 for n in names if not (directory / "Images" / folder / n).is_file()
        )
        for path, (_split, folder, names) in lists.items()
    }
    reported = {p.path: int(p.message.split()[0]) for p in problems if "resolve to no file" in p.message}
    assert reported == {k: v for k, v in expected_missing.items() if v}
    assert len(problems) == len(reported), [str(p) for p in problems]


@pytest.mark.upstream
def test_page_token_is_not_a_patient(shared: Path, registry) -> None:
    """UCSD-AI4H/COVID-CT#11: "p23" appears in several lists; it is a page number.

    (In this August 2020 version of the lists it is in train and val; the issue saw all three.)
    """
    lists = split_lists(shared / SAMPLE)
    splits_with_p23 = {split for split, _folder, names in lists.values() for n in names if "-p23-" in n}
    assert len(splits_with_p23) >= 2
    papers = {}
    for split, folder, names in lists.values():
        if folder == "CT_COVID":
            for name in names:
                if "-p23-" in name:
                    papers.setdefault(paper_by_hand(name), set()).add(split)
    assert len(papers) > 1, "p23 pages of different papers"
    keys = {grouping_key(n, folder) for _s, folder, names in lists.values() for n in names if "-p23-" in n}
    assert keys == {f"paper:{paper}" for paper in papers}


@pytest.mark.upstream
def test_zips_only_then_unzipped_in_place(shared: Path, registry, tmp_path: Path) -> None:
    root = tmp_path / "ucsd"
    shutil.copytree(shared / SAMPLE / "Data-split", root / "Data-split")
    (root / "Images-processed").mkdir()
    for folder in CLASSES:
        with zipfile.ZipFile(root / "Images-processed" / f"{folder}.zip", "w") as archive:
            for image in sorted((shared / SAMPLE / "Images" / folder).iterdir()):
                archive.write(image, f"{folder}/{image.name}")
                archive.writestr(f"__MACOSX/{folder}/._{image.name}", b"\0\x05\x16\x07")
    entries, problems = run(registry, root)
    assert entries == []
    assert len(problems) == 1 and problems[0].level == "error"
    assert (
        "unzip -n CT_COVID.zip" in problems[0].message
        and "datasets/ucsd-covid-ct/Images-processed" in problems[0].message
    )

    for folder in CLASSES:
        with zipfile.ZipFile(root / "Images-processed" / f"{folder}.zip") as archive:
            archive.extractall(root / "Images-processed")
    entries, _ = run(registry, root)
    expected = sorted(
        f"Images-processed/{folder}/{p.name}"
        for folder in CLASSES
        for p in (shared / SAMPLE / "Images" / folder).iterdir()
    )
    assert sorted(e.path for e in entries) == expected


@pytest.mark.upstream
def test_unlisted_double_listed_and_second_copy(shared: Path, registry, tmp_path: Path) -> None:
    root = tmp_path / "ucsd"
    copy_sample(shared, root)
    covid = sorted((root / "Images" / "CT_COVID").iterdir())
    shutil.copy(covid[0], root / "Images" / "CT_COVID" / "extra-p1-1.png")
    with open(root / "Data-split" / "COVID" / "valCT_COVID.txt", "a") as handle:
        handle.write(f"{covid[1].name}\n")
    (root / "old" / "CT_COVID").mkdir(parents=True)
    shutil.copy(covid[0], root / "old" / "CT_COVID" / covid[0].name)
    entries, problems = run(registry, root)
    assert not any(e.path.startswith("old/") for e in entries)
    messages = {(p.path, m) for p in problems for m in ("no split list", "also in", "second copy") if m in p.message}
    assert messages == {
        ("Images/CT_COVID/extra-p1-1.png", "no split list"),
        ("Data-split/COVID/valCT_COVID.txt", "also in"),
        ("old", "second copy"),
    }


@pytest.mark.upstream
def test_metainfo_patients_used_when_present(shared: Path, registry, tmp_path: Path) -> None:
    root = tmp_path / "ucsd"
    copy_sample(shared, root)
    a, b = "PIIS0140673620301549_0%1.png", "PIIS0140673620301549_1.png"  # one paper, two images
    assert (root / "Images/CT_COVID" / a).is_file() and (root / "Images/CT_COVID" / b).is_file()
    (root / "COVID-CT-MetaInfo.csv").write_text(
        "File name,Patient ID,Age,Gender,Location,Medical history,Time,Severity,Other diseases,DOI,Captions\n"
        f"{a},Patient 201,41,M,,,,,,,\n{b},Patient 202,67,F,,,,,,,\n"
    )
    entries, _ = run(registry, root)
    by_name = {e.path.rsplit("/", 1)[1]: e for e in entries}
    assert (by_name[a].patient_id, by_name[a].age, by_name[a].sex) == ("CT_COVID:Patient 201", 41.0, "M")
    assert (by_name[b].patient_id, by_name[b].sex) == ("CT_COVID:Patient 202", "F")
    assert by_name[a].extra["group"] == by_name[b].extra["group"] == "paper:PIIS0140673620301549"
