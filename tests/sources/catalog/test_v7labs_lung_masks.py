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


def _hostile_copy(source: Path, target: Path, extra_members: dict[str, bytes]) -> Path:
    """The sample with members added to covid-only.zip (the originals kept)."""
    import shutil

    shutil.copytree(source, target, symlinks=True)
    zipped = target / "annotations/covid-only.zip"
    zipped.unlink()
    with zipfile.ZipFile(source / "annotations/covid-only.zip") as old, zipfile.ZipFile(zipped, "w") as new:
        for info in old.infolist():
            new.writestr(info, old.read(info))
        for name, data in extra_members.items():
            new.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return target


@pytest.mark.upstream
def test_a_deep_or_huge_darwin_member_is_one_problem_and_every_other_mask_still_joins(
    shared: Path, registry, tmp_path: Path
) -> None:
    from covid19_images.sources.catalog.v7labs_lung_masks.annotations import read

    directory = shared / SAMPLE
    expected = {a.path for a in read(SourceContext(registry[SOURCE], directory, list_files(directory)))}
    deep = b'{"image": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge = b'{"image": {"original_filename": "' + b"x" * (40 << 20) + b'"}}'  # 40 MB inflated, 40 KB stored
    hostile = _hostile_copy(directory, tmp_path / "v7", {"deep.json": deep, "huge.json": huge})
    ctx = SourceContext(registry[SOURCE], hostile, list_files(hostile))
    items = list(read(ctx))
    assert {a.path for a in items} == expected and expected
    messages = [p.message for p in ctx.problems]
    assert any(m.startswith("deep.json: unreadable Darwin JSON (JSON nested") for m in messages), messages
    assert any(m.startswith("huge.json: unreadable Darwin JSON (huge.json") and "budget" in m for m in messages)


@pytest.mark.upstream
def test_a_mask_that_is_not_what_its_json_says_is_reported_not_joined(shared: Path, registry, tmp_path: Path) -> None:
    import shutil

    import numpy as np
    from PIL import Image

    from covid19_images.sources.catalog.v7labs_lung_masks.annotations import read

    directory = shared / SAMPLE
    joined = sorted(a.path for a in read(SourceContext(registry[SOURCE], directory, list_files(directory))))
    assert len(joined) >= 2
    copy = tmp_path / "v7"
    shutil.copytree(directory, copy, symlinks=True)
    resized, repainted = copy / joined[0], copy / joined[1]
    with Image.open(resized) as image:
        image.resize((image.width // 2, image.height // 2), Image.Resampling.NEAREST).save(resized)
    pixels = np.asarray(Image.open(repainted)).copy()
    pixels[0, 0] = 200  # not a class of class_mapping.csv
    Image.fromarray(pixels).save(repainted)
    ctx = SourceContext(registry[SOURCE], copy, list_files(copy))
    assert sorted(a.path for a in read(ctx)) == joined[2:]
    problems = {p.path: p.message for p in ctx.problems}
    assert "but annotations/covid-only.zip says its image is" in problems[joined[0]]
    assert "mask values [200] are not classes" in problems[joined[1]]
