"""covid19-ct-seg (Zenodo 3757476): the parser over its miniature, and its name mapping over the real metadata."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path, PurePosixPath

import pytest

from covid19_images.sources.catalog.covid19_ct_seg import MASK_DIRS, mask_stem
from covid19_images.testing.miniature import miniature_dir
from tests.conftest import run_parser

SOURCE = "covid19-ct-seg"
REAL = Path(__file__).resolve().parents[3].parent / "shared" / "upstream-portal" / "zenodo-3757476-covid19-ct-seg"


def test_every_volume_is_a_covid_ct_row_with_its_three_masks(registry) -> None:
    entries, problems = run_parser(registry[SOURCE], miniature_dir(SOURCE))
    volumes = sorted(p.relative_to(miniature_dir(SOURCE)).as_posix() for p in miniature_dir(SOURCE).glob("ct_scans/*"))
    assert sorted(e.path for e in entries) == volumes and not problems
    for entry in entries:
        assert entry.modality == "ct" and entry.finding == "COVID-19"
        assert entry.patient_id == PurePosixPath(entry.path).name.removesuffix(".nii.gz")
        for kind in MASK_DIRS:
            assert (miniature_dir(SOURCE) / entry.extra[kind]).is_file()


def test_a_volume_without_masks_is_kept_and_reported(registry, tmp_path: Path) -> None:
    folder = tmp_path / "fetched"
    shutil.copytree(miniature_dir(SOURCE), folder)
    for kind in MASK_DIRS:
        shutil.rmtree(folder / kind)
    entries, problems = run_parser(registry[SOURCE], folder)
    assert len(entries) == 2 and len(problems) == 2
    assert all("no mask named" in p.message for p in problems)


@pytest.mark.skipif(not REAL.is_dir(), reason="needs ../shared/upstream-portal (the real metadata)")
def test_mask_names_follow_the_real_metadata() -> None:
    """The Kaggle mirror's metadata.csv pairs each volume with its masks: mask_stem must agree on all 20."""
    with open(REAL / "kaggle-andrewmvd-covid19-ct-scans" / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20
    for row in rows:
        volume = PurePosixPath(row["ct_scan"]).name.removesuffix(".nii")
        for column in ("lung_mask", "infection_mask", "lung_and_infection_mask"):
            assert mask_stem(volume) == PurePosixPath(row[column]).name.removesuffix(".nii"), (volume, column)
