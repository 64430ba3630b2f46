"""COVID-QU-Ex: two sets, three class folders, Train/Val/Test, lung and infection masks beside their images."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from covid19_images.sources.catalog.covid_qu_ex.annotations import read as read_masks
from covid19_images.sources.parsing import SourceContext, list_files
from tests.conftest import run_parser
from tests.sources.catalog.portal import miniature_copy, portal_spec

SOURCE = "covid-qu-ex"
CLASS_LABEL = {"COVID-19": "covid-19", "Non-COVID": "other", "Normal": "normal"}


def masks_of(folder: Path):
    ctx = SourceContext(portal_spec(SOURCE), folder, list_files(folder))
    return list(read_masks(ctx)), list(ctx.problems)


def pictures(folder: Path, kind: str) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png") if p.parent.name == kind)


def test_miniature_one_entry_per_image_with_class_split_and_set(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "qu")
    images = pictures(folder, "images")
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert sorted(e.path for e in entries) == images and not problems
    for entry in entries:
        parts = PurePosixPath(entry.path).parts
        assert entry.label == CLASS_LABEL[parts[-3]] and entry.finding == parts[-3]
        assert entry.official_split == parts[-4].lower()
        assert entry.extra["subset"] == ("infection" if parts[0].startswith("Infection") else "lung")
        assert entry.patient_id == ""  # none published: the builder groups by file
    assert {e.official_split for e in entries} == {"train", "val", "test"}


def test_miniature_every_mask_lands_on_the_image_of_the_same_name(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "qu")
    masks, problems = masks_of(folder)
    expected = {
        (m, "lung" if "/lung masks/" in m else "infection", m.replace("/lung masks/", "/images/").replace(
            "/infection masks/", "/images/"))
        for m in pictures(folder, "lung masks") + pictures(folder, "infection masks")
    }  # fmt: skip
    assert {(a.path, a.name, a.targets[0][1]) for a in masks} == expected and not problems
    assert {a.name for a in masks} == {"lung", "infection"}
    assert len(pictures(folder, "lung masks")) == len(pictures(folder, "images"))  # lung masks for all


def test_a_mask_without_image_and_a_stray_picture_are_reported_not_fatal(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "qu")
    orphan = folder / "Lung Segmentation Data/Lung Segmentation Data/Val/Normal/lung masks/Normal (99).png"
    orphan.write_bytes(next(folder.rglob("lung masks/*.png")).read_bytes())
    (folder / "stray.png").write_bytes(orphan.read_bytes())
    _masks, problems = masks_of(folder)
    assert any(p.path == orphan.relative_to(folder).as_posix() and "without an image" in p.message for p in problems)
    entries, parse_problems = run_parser(portal_spec(SOURCE), folder)
    assert "stray.png" not in {e.path for e in entries} and any(p.path == "stray.png" for p in parse_problems)
    assert len(entries) == len(pictures(folder, "images"))


def test_a_prefix_folder_from_the_archive_is_tolerated(tmp_path: Path) -> None:
    folder = tmp_path / "prefixed"
    miniature_copy(SOURCE, folder / "COVID-QU-Ex_Dataset")
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert len(entries) == len(pictures(folder, "images")) and not problems
    masks, _ = masks_of(folder)
    assert all(a.targets[0][1].startswith("COVID-QU-Ex_Dataset/") for a in masks)
