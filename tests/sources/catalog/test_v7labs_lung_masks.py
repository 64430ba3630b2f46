"""V7 Labs on its sample (real or miniature): no images; masks mapped through covid-only.zip, the rest reported."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from covid19_images.core.annotation import Annotation
from covid19_images.sources.parsing import SourceContext, list_files
from tests.conftest import run_parser

SOURCE = "v7labs-lung-masks"
SAMPLE = "v7labs-covid-19-xray-dataset"
MASKS = "annotations/all-images-semantic-masks"


def darwin_names(directory: Path) -> dict[str, dict]:
    with zipfile.ZipFile(directory / "annotations/covid-only.zip") as archive:
        return {Path(m).stem: json.loads(archive.read(m))["image"] for m in archive.namelist() if m.endswith(".json")}


@pytest.mark.upstream
def test_annotation_only_source_has_no_rows(shared: Path, registry, on_miniature: bool) -> None:
    masks = list((shared / SAMPLE / MASKS).glob("*.png"))
    assert on_miniature or len(masks) == 36
    entries, problems = run_parser(registry[SOURCE], shared / SAMPLE)
    assert entries == []
    assert [p.level for p in problems] == ["info"]
    assert f"{len(masks)} lung masks, no images" in problems[0].message


@pytest.mark.upstream
def test_masks_map_to_ieee8023_names_or_are_reported(shared: Path, registry, on_miniature: bool) -> None:
    from covid19_images.sources.catalog.v7labs_lung_masks.annotations import read

    directory = shared / SAMPLE
    images = darwin_names(directory)
    assert len(images) == 517 or (on_miniature and images)  # the miniature's zip keeps a few real entries
    masks = sorted(p.stem for p in (directory / MASKS).glob("*.png"))
    ctx = SourceContext(registry[SOURCE], directory, list_files(directory))
    items = list(read(ctx))
    assert all(isinstance(a, Annotation) for a in items)
    annotations = {Path(a.path).stem: a for a in items}
    reported = {Path(p.path).stem: p for p in ctx.problems}
    assert sorted(annotations) == sorted(m for m in masks if m in images)
    assert sorted(reported) == sorted(m for m in masks if m not in images)
    assert annotations and reported
    for darwin_id, annotation in annotations.items():
        image = images[darwin_id]
        assert annotation.targets == [("ieee8023-covid-chestxray", f"images/{image['original_filename']}")]
        assert (annotation.width, annotation.height) == (image["width"], image["height"])
        assert (annotation.kind, annotation.name, annotation.value) == ("mask", "lung", "255")
    for problem in reported.values():
        assert "not in annotations/covid-only.zip" in problem.message and "not joined" in problem.message
