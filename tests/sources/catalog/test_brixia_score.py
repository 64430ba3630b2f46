"""BrixIA on its sample (real or miniature): the scored images become rows, every score an annotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from covid19_images.core.annotation import Annotation
from covid19_images.core.schema import Problem
from covid19_images.sources.parsing import SourceContext, list_files
from tests.conftest import csv_rows_with_lines, run_parser

SOURCE = "brixia-score"
SAMPLE = "BrixIA-Brixia-score-COVID-19"
CSV = "data/public-annotations.csv"


@pytest.mark.upstream
def test_scored_images_present_become_xray_rows(shared: Path, registry, on_miniature: bool) -> None:
    directory = shared / SAMPLE
    rows = csv_rows_with_lines(directory / CSV, encoding="utf-8-sig")
    assert on_miniature or len(rows) == 192  # the real CSV is complete in the sample
    held = {name for _, r in rows if (directory / "data/public-cohen-subset" / (name := r["filename"])).is_file()}
    assert 0 < len(held) < len(rows)
    entries, problems = run_parser(registry[SOURCE], directory)
    assert sorted(e.path for e in entries) == sorted(f"data/public-cohen-subset/{n}" for n in held)
    assert {(e.modality, e.label) for e in entries} == {("xray", "unknown")}
    missing = [p for p in problems if "not in the checkout" in p.message]
    assert len(missing) == len(rows) - len(held)
    line = {r["filename"]: number for number, r in rows}
    for problem in missing:
        name = problem.message.split("data/public-cohen-subset/")[1].split(",")[0]
        assert problem.row.endswith(f"line {line[name]}"), problem


@pytest.mark.upstream
def test_every_score_is_an_annotation_with_the_csv_value(shared: Path, registry, on_miniature: bool) -> None:
    from covid19_images.sources.catalog.brixia_score.annotations import read

    directory = shared / SAMPLE
    ctx = SourceContext(registry[SOURCE], directory, list_files(directory))
    items = list(read(ctx))
    assert not [i for i in items if isinstance(i, Problem)] and not ctx.problems
    found = {(a.targets[0][1].rsplit("/", 1)[1], a.name, a.rater): a.value for a in items if isinstance(a, Annotation)}
    expected = {}
    rows = csv_rows_with_lines(directory / CSV, encoding="utf-8-sig")
    for _, row in rows:
        for prefix, rater in (("S", "senior"), ("J", "junior")):
            for zone in ("A", "B", "C", "D", "E", "F", "Global"):
                expected[(row["filename"], f"brixia_{zone if zone != 'Global' else 'global'}", rater)] = row[
                    f"{prefix}-{zone}"
                ]
    assert found == expected
    assert len(found) == len(rows) * 14 and (on_miniature or len(rows) == 192)
    assert {a.kind for a in items} == {"severity"} and {a.license for a in items} == {"CC-BY-NC-SA-4.0"}
    for a in items:
        assert a.targets[1] == ("ieee8023-covid-chestxray", "images/" + a.targets[0][1].rsplit("/", 1)[1])
