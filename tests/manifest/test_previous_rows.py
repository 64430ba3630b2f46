"""Reading Arrow-backed frames once per column gives what the element-wise reads gave."""

from __future__ import annotations

import pandas as pd
import pytest

from covid19_images.manifest.build import _rows_by_source
from covid19_images.sources.parsing import iter_rows
from covid19_images.testing.miniature import sample_root


@pytest.mark.parametrize("dtype", [object, "str"], ids=str)
def test_each_sources_previous_rows_are_the_rows_a_comparison_selects(dtype) -> None:
    # contiguous (as written), scattered (as a caller may pass), absent, and a blank source
    sources = ["a", "a", "b", "c", "b", "a", "", "d", "d", "d"]
    frame = pd.DataFrame(
        {"source": sources, "path": [f"p{i}" for i in range(len(sources))], "label": list("xyzxyzxyzx")},
        index=range(100, 100 + len(sources)),
        dtype=dtype,
    )
    rows_of = _rows_by_source(frame)
    for name in ["a", "b", "c", "d", "", "missing"]:
        pd.testing.assert_frame_equal(rows_of(name), frame[frame["source"] == name])
    empty = frame.iloc[0:0]
    assert _rows_by_source(empty)("a").empty and list(_rows_by_source(empty)("a").columns) == list(frame.columns)


@pytest.mark.upstream
def test_iter_rows_gives_itertuples_rows_on_real_metadata() -> None:
    metadata = sample_root() / "ieee8023-covid-chestxray-dataset" / "metadata.csv"
    frame = pd.read_csv(metadata, dtype=str, keep_default_na=False)
    frame.loc[frame.index[::7], frame.columns[1]] = float("nan")  # a missing cell, as a tolerant reader may leave
    frame["_row"] = [f"metadata.csv line {i + 2}" for i in range(len(frame))]
    columns = list(frame.columns)
    expected = [dict(zip(columns, values, strict=True)) for values in frame.itertuples(index=False, name=None)]
    got = list(iter_rows(frame))
    assert len(got) == len(frame) > 10
    missing = object()  # NaN != NaN: compare a missing cell as one sentinel, never as the text "nan"
    assert [{k: (missing if v != v else v) for k, v in row.items()} for row in got] == [
        {k: (missing if v != v else v) for k, v in row.items()} for row in expected
    ]
    assert all(type(v) is str for row in got for k, v in row.items() if k != columns[1])
