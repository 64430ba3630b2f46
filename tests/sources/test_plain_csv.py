"""A plain metadata table read by Arrow gives the frame the record-by-record path gives, problems included."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from covid19_images.sources import parsing
from covid19_images.sources.parsing import SourceContext, read_metadata_csv
from covid19_images.sources.plain_csv import plain_records
from covid19_images.sources.registry import SourceSpec

SHARED = Path(__file__).resolve().parents[3] / "shared"


def _ctx(directory: Path) -> SourceContext:
    spec = SourceSpec(
        "unit", "https://github.com/example/unit.git", "master", "ieee8023-covid-chestxray", ("xray",), "CC0-1.0"
    )
    return SourceContext(spec, directory, [])


def _both(directory: Path, relative: str, monkeypatch: pytest.MonkeyPatch, **kwargs) -> tuple:
    """(frame, problems) read as shipped, then (frame, problems) read record by record."""
    ctx = _ctx(directory)
    fast = read_metadata_csv(ctx, relative, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(parsing, "plain_records", lambda *args: None)
        reference_ctx = _ctx(directory)
        reference = read_metadata_csv(reference_ctx, relative, **kwargs)
    return fast, [str(p) for p in ctx.problems], reference, [str(p) for p in reference_ctx.problems]


PLAIN = {
    "blank lines and blank records": "id,label\n\n1,a\n   ,  \n,\n2, b \n\n",
    "windows line ends, no last newline": "id,label,view\r\n1,covid,PA\r\n\r\n2,normal,AP",
    "unicode spaces at the ends": "id,label\n1,\xa0covid\u3000\n2,\x1cnormal\x1f\n3,ü 漢字\n",
    "a header named twice": "id,id,label\n1,2,a\n3,4,b\n",
    "empty cells and missing words": "id,label,note\n1,,NA\n2,null,nan\n3,None,\n",
}


@pytest.mark.parametrize("text", PLAIN.values(), ids=PLAIN.keys())
def test_a_plain_table_reads_as_record_by_record(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m.csv").write_bytes(text.encode("utf-8"))
    width = len(text.split("\n")[0].split(","))
    assert plain_records(text, width) is not None
    fast, fast_problems, reference, reference_problems = _both(tmp_path, "m.csv", monkeypatch)
    pd.testing.assert_frame_equal(fast, reference)
    assert fast_problems == reference_problems


def test_lines_and_cells_of_a_plain_table(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("# made by hand\nid,label\n\n 7 ,covid\n , \n8,\tnormal\n", encoding="utf-8")
    frame = read_metadata_csv(_ctx(tmp_path), "m.csv", comment_prefix="#")
    assert frame.to_dict(orient="list") == {
        "id": ["7", "8"],
        "label": ["covid", "normal"],
        "_row": ["m.csv line 4", "m.csv line 6"],
    }


NOT_PLAIN = {
    "a quoted cell": 'id,label\n1,"a, b"\n',
    "a ragged record": "id,label\n1,a\n2\n3,c\n",
    "a NUL": "id,label\n1,a\x00\n",
    "an old Mac line end": "id,label\r1,a\r",
    "a blank first line": "\nid,label\n1,a\n",
}


@pytest.mark.parametrize("text", NOT_PLAIN.values(), ids=NOT_PLAIN.keys())
def test_anything_else_is_left_to_the_record_by_record_path(
    tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert plain_records(text, 2) is None
    (tmp_path / "m.csv").write_bytes(text.encode("utf-8"))
    fast, fast_problems, reference, reference_problems = _both(tmp_path, "m.csv", monkeypatch)
    assert fast_problems == reference_problems
    if reference is None:
        assert fast is None
    else:
        pd.testing.assert_frame_equal(fast, reference)


def test_a_ragged_record_is_still_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("id,label\n1,a\n2,b,extra\n3,c\n", encoding="utf-8")
    ctx = _ctx(tmp_path)
    frame = read_metadata_csv(ctx, "m.csv")
    assert frame["id"].tolist() == ["1", "3"]
    assert [p.row for p in ctx.problems] == ["m.csv line 3"]


def _shared_tables() -> list[Path]:
    return sorted(SHARED.glob("upstream*/**/*.csv")) if SHARED.is_dir() else []


@pytest.mark.skipif(not _shared_tables(), reason="../shared (the real upstream metadata) is not here")
def test_every_real_metadata_table_reads_as_record_by_record(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = 0
    for table in _shared_tables():
        text = table.read_bytes().decode("utf-8", errors="replace")
        plain += plain_records(text, len(text.split("\n")[0].split(","))) is not None
        fast, fast_problems, reference, reference_problems = _both(table.parent, table.name, monkeypatch)
        assert fast_problems == reference_problems, table
        if reference is None:
            assert fast is None, table
        else:
            pd.testing.assert_frame_equal(fast, reference, obj=str(table))
    assert plain >= 5  # most of them are plain: the fast path is the one taken


LAID_OUT_OTHERWISE = {
    "a header over two lines": ('id,"la\nbel"\n1,a\n', {"id": ["1"], "la\nbel": ["a"], "_row": ["m.csv line 3"]}),
    "old Mac line ends": (
        "id,label\r1,a\r\r2,b\r",
        {"id": ["1", "2"], "label": ["a", "b"], "_row": ["m.csv line 2", "m.csv line 4"]},
    ),
    "a quoted cell over two lines": (
        'id,note\n1,"x\ny"\n2,z\n',
        {"id": ["1", "2"], "note": ["x\ny", "z"], "_row": ["m.csv line 2", "m.csv line 4"]},
    ),
}


@pytest.mark.parametrize(("text", "expected"), LAID_OUT_OTHERWISE.values(), ids=LAID_OUT_OTHERWISE.keys())
def test_a_table_read_record_by_record_keeps_its_header_and_lines(tmp_path: Path, text: str, expected: dict) -> None:
    (tmp_path / "m.csv").write_bytes(text.encode("utf-8"))
    ctx = _ctx(tmp_path)
    assert read_metadata_csv(ctx, "m.csv").to_dict(orient="list") == expected
    assert not ctx.problems
