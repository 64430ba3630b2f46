"""The documented vocabularies and columns are the ones the code uses."""

from __future__ import annotations

import re
from pathlib import Path

from covid19_images.core.schema import MANIFEST_COLUMNS, PROBLEM_COLUMNS, PROBLEM_LEVELS
from covid19_images.core.vocab import FINDING_LABELS, VIEWS
from covid19_images.imaging.formats import DECODABLE_FORMATS

DOC = (Path(__file__).resolve().parents[1] / "manifests" / "README.md").read_text()


def _table_rows(header: str) -> dict[str, list[str]]:
    section = DOC.split(header, 1)[1]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        key = "" if cells[0] == "(blank)" else cells[0].strip("`")
        rows[key] = cells[1:]
    return rows


def test_every_label_mapping_is_documented_exactly() -> None:
    rows = _table_rows("| raw value | label | label_detail |")
    assert set(rows) == set(FINDING_LABELS)
    for raw, (label, detail) in FINDING_LABELS.items():
        assert rows[raw] == [label, detail], raw


def test_every_view_mapping_is_documented_exactly() -> None:
    rows = _table_rows("| raw value | view |")
    assert rows == {raw: [view] for raw, view in VIEWS.items()}


def test_every_manifest_column_is_documented() -> None:
    documented = set()
    for line in DOC.split("## Columns", 1)[1].split("##", 1)[0].splitlines():
        documented.update(re.findall(r"`([a-z_0-9]+)`", line.split("|")[1]) if line.startswith("| `") else [])
    assert documented == set(MANIFEST_COLUMNS)


def test_format_vocabulary_is_documented_exactly() -> None:
    """Every format the decoder can write to the ``format`` column, and nothing else."""
    row = next(line for line in DOC.split("## Columns", 1)[1].splitlines() if line.startswith("| `format` |"))
    vocabulary = row.strip("|").split("|")[2]
    assert sorted(re.findall(r"[a-z0-9]+", vocabulary)) == sorted(DECODABLE_FORMATS)


def test_every_problems_column_and_level_is_documented() -> None:
    rows = _table_rows("| problems column | meaning | vocabulary / format |")
    assert list(rows) == list(PROBLEM_COLUMNS)
    assert re.findall(r"`([a-z]+)`", rows["level"][1]) == list(PROBLEM_LEVELS)
