"""The column-wise CSV writer gives pandas' ``to_csv`` bytes exactly (manifests are diffed by git), but for a
``\\r`` inside a value, which it always quotes so that the value reads back as itself."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
import yaml

from covid19_images.core.annotation import ANNOTATION_COLUMNS
from covid19_images.core.schema import MANIFEST_COLUMNS, Problem
from covid19_images.manifest.annotations import annotations_bytes, annotations_from_bytes
from covid19_images.manifest.build import MANIFEST_FILE, manifest_bytes, read_manifest
from covid19_images.manifest.csv_text import _text_columns, frame_csv_bytes
from covid19_images.manifest.io import manifest_from_bytes, problems_bytes
from tests.conftest import PROJECT, build_synced_root

#: what CPython's csv writer treats specially (Modules/_csv.c), and what a manifest cell may hold
ADVERSARIAL = [
    "plain",
    "",
    None,
    float("nan"),
    "a,b",
    'say "hi"',
    '"',
    '""',
    ",",
    "line\nbreak",
    "\n",
    "carriage\rreturn",
    "\r",
    "crlf\r\nend",
    "\r\n",
    " leading",
    "trailing ",
    "  ",
    "tab\tinside",
    "ünïcødé ✓ 中文 😀",
    'é,"ü"\n',
    "nul\x00inside",
    "back\\slash",
    "'single'",
    '{"date":"2020-03-21","views":["PA","AP"]}',
]
TEXT_DTYPES = [object, "str", "string[python]"]


def _pandas(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


#: a stand-in for ``\r`` that pandas quotes on every Python version (``\n``) and that no test value holds
_CR_STAND_IN = "\n\x01\x02"


def _pandas_quoting_cr(frame: pd.DataFrame) -> bytes:
    """pandas' bytes with every field holding ``\\r`` quoted, as Python 3.12's csv writer does."""
    standing_in = frame.map(lambda v: v.replace("\r", _CR_STAND_IN) if isinstance(v, str) else v)
    return _pandas(standing_in).replace(_CR_STAND_IN.encode(), b"\r")


def _read_back(data: bytes) -> list[list[str]]:
    """Rows as Python's csv module and pandas each read them; the test asserts both agree."""
    by_csv = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    by_pandas = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[])
    assert [list(by_pandas.columns), *by_pandas.to_numpy().tolist()] == by_csv
    return by_csv


def _is_fast(frame: pd.DataFrame) -> bool:
    return _text_columns(frame) is not None


@pytest.mark.parametrize("dtype", TEXT_DTYPES, ids=str)
def test_adversarial_values_are_written_as_pandas_writes_them(dtype) -> None:
    values = pd.Series(ADVERSARIAL, dtype=dtype)
    frame = pd.DataFrame({"image_id": values, "extra": values[::-1].to_numpy(), 'odd, "label"\n': values})
    assert _is_fast(frame)  # the column-wise writer ran, not pandas behind it
    data = frame_csv_bytes(frame)
    assert data == _pandas_quoting_cr(frame)
    without_cr = frame[~frame.apply(lambda column: column.str.contains("\r", regex=False)).any(axis=1).to_numpy()]
    assert 0 < len(without_cr) < len(frame) and frame_csv_bytes(without_cr) == _pandas(without_cr)


def test_columns_in_many_chunks_are_written_as_pandas_writes_them() -> None:
    """A manifest joined from its sources holds each column in several Arrow chunks (empty ones too,
    and slices of a larger column); the chunks are joined as they are, each value quoted by its own
    chunk's offsets, so the bytes must still be pandas' for the whole frame."""
    import itertools
    import random

    import pyarrow as pa

    from covid19_images.manifest.io import text_dtype

    rng = random.Random(7)
    values = [v for v in ADVERSARIAL if isinstance(v, str) and "\r" not in v]
    whole = pd.DataFrame({name: [rng.choice(values) for _ in range(90)] for name in ("a", "b,", "c")})
    whole = whole.astype(text_dtype())
    for cuts in ([0, 90], [0, 1, 2, 45, 45, 89, 90], [0, 30, 31, 60, 90], [0, 0, 90]):
        parts = [whole.iloc[i:j] for i, j in itertools.pairwise(cuts)]
        joined = pd.concat(parts, ignore_index=True)
        if len(cuts) > 3:  # several chunks, as pandas holds them: what the writer is given
            assert pa.array(joined["a"].array).num_chunks > 1
        assert _is_fast(joined)
        assert frame_csv_bytes(joined) == _pandas(joined.astype(object)), cuts
    one = whole[["a"]].iloc[3:70]  # one column alone: its empty values are written as ""
    joined = pd.concat([one.iloc[:10], one.iloc[10:10], one.iloc[10:]], ignore_index=True)
    assert frame_csv_bytes(joined) == _pandas(joined.astype(object))


@pytest.mark.parametrize("dtype", TEXT_DTYPES, ids=str)
def test_every_value_reads_back_as_itself(dtype) -> None:
    """Python 3.11's writer leaves a lone ``\\r`` bare, and readers end the row there: not this writer."""
    frame = pd.DataFrame({"a": pd.Series(ADVERSARIAL, dtype=dtype), "b": "after"})
    expected = [["a", "b"], *[["" if v is None or v != v else v, "after"] for v in ADVERSARIAL]]
    assert _read_back(frame_csv_bytes(frame)) == expected


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"n": [1, 2, 3], "s": ["x\ry", "b,c", None]}),
        pd.DataFrame({"f": [1.5, float("nan")], "s": ["\r", "b"]}),
        pd.DataFrame({"carriage\rreturn": ["a", "b"], "s": ["c", "d"]}),
    ],
    ids=["ints", "floats", "label"],
)
def test_a_frame_left_to_pandas_reads_back_too(frame: pd.DataFrame) -> None:
    assert not _is_fast(frame)
    rows = _read_back(frame_csv_bytes(frame))
    assert rows == [[str(c) for c in frame.columns], *frame.astype(object).fillna("").astype(str).to_numpy().tolist()]
    # where nothing holds \r, the bytes stay pandas' own
    clean = frame.replace("\r", "r", regex=True).rename(columns=lambda label: label.replace("\r", "r"))
    assert frame_csv_bytes(clean) == _pandas(clean)


def test_problems_annotations_and_manifest_cells_holding_cr_come_back_whole() -> None:
    problem = Problem(source="s\rx", message="bad\rcell", path="a\rb.png", row="metadata.csv row 3")
    data = problems_bytes([problem, Problem(source="t", message="fine")])
    assert _read_back(data)[1:] == [
        ["warning", "s\rx", "a\rb.png", "metadata.csv row 3", "bad\rcell"],
        ["warning", "t", "", "", "fine"],
    ]
    annotations = pd.DataFrame({c: ["1", "2"] for c in ANNOTATION_COLUMNS})
    annotations["name"] = ["left\rlung", "right"]
    assert annotations_from_bytes(annotations_bytes(annotations))["name"].tolist() == ["left\rlung", "right"]
    manifest = pd.DataFrame({c: ["v", "w"] for c in MANIFEST_COLUMNS})
    manifest["finding"] = ["COVID-19\rPneumonia", "No Finding"]
    assert manifest_from_bytes(manifest_bytes(manifest))["finding"].tolist() == ["COVID-19\rPneumonia", "No Finding"]


@pytest.mark.parametrize("dtype", TEXT_DTYPES, ids=str)
@pytest.mark.parametrize("label", ["only", "", "with,comma"])
def test_a_one_column_frame_quotes_its_empty_rows(dtype, label: str) -> None:
    frame = pd.DataFrame({label: pd.Series(["", None, "x", " ", '"'], dtype=dtype)})
    assert _is_fast(frame)
    data = frame_csv_bytes(frame)
    assert data == _pandas(frame)
    assert data.split(b"\n")[1:3] == [b'""', b'""']  # a row of one empty field is written ""


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype="str")}),
        pd.DataFrame({"": pd.Series([], dtype=object)}),
        pd.DataFrame({"a": [None, None], "b": [float("nan"), None]}, dtype=object),
        pd.DataFrame({"a": pd.Series(ADVERSARIAL, dtype="str").iloc[::3], "b": "x"}),  # a taken, non-contiguous slice
    ],
    ids=["no-rows", "no-rows-one-empty-label", "all-missing", "sliced"],
)
def test_edge_frames_match_pandas(frame: pd.DataFrame) -> None:
    assert _is_fast(frame)
    assert frame_csv_bytes(frame) == _pandas_quoting_cr(frame)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(),
        pd.DataFrame({"n": [1, 2, 3], "s": ["a", "b,c", None]}),
        pd.DataFrame({"f": [1.5, float("nan")], "s": ["a", "b"]}),
        pd.DataFrame({"mixed": pd.Series([1, "x", None, True], dtype=object)}),
        pd.DataFrame({"bytes": pd.Series([b"x,y", "y"], dtype=object)}),
        pd.DataFrame({0: ["a"], "s": ["b"]}),
        pd.DataFrame({"c": pd.Categorical(["a", "b,c"])}),
    ],
    ids=["no-columns", "ints", "floats", "mixed-objects", "bytes", "non-text-label", "categorical"],
)
def test_frames_that_are_not_all_text_are_left_to_pandas(frame: pd.DataFrame) -> None:
    assert not _is_fast(frame)
    assert frame_csv_bytes(frame) == _pandas(frame)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    names = yaml.safe_load((PROJECT / "sources.yaml").read_text())["sources"]
    return build_synced_root(tmp_path_factory.mktemp("csv"), mirrors, [n for n in names if isinstance(n, str)])


@pytest.mark.upstream
def test_the_demo_manifest_is_the_bytes_pandas_writes(demo_root: Path) -> None:
    data = (demo_root / MANIFEST_FILE).read_bytes()
    manifest = read_manifest(demo_root)
    assert len(manifest) > 100 and manifest["source"].nunique() >= 8
    assert (manifest["extra"].str.contains('"') & manifest["extra"].str.contains(",")).any()  # quoting was needed
    assert _is_fast(manifest) and _is_fast(manifest.astype(object))
    assert data == _pandas(manifest)  # the file sync wrote with the fast writer is pandas' answer
    assert manifest_bytes(manifest) == data
    assert manifest_bytes(manifest.astype(object).sample(frac=1, random_state=3)) == data


def _c_engine(data: bytes) -> pd.DataFrame:
    """What ``read_csv(dtype=str, keep_default_na=False)`` reads: the reference for the Arrow reader."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")


@pytest.mark.parametrize("rows", [0, 1, 70_000])  # 70,000 rows of ~60 bytes: Arrow reads them in several blocks
def test_manifest_bytes_read_back_as_the_c_engine_reads_them(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    values = [ADVERSARIAL[i % len(ADVERSARIAL)] for i in range(rows)]
    frame = pd.DataFrame({c: values for c in MANIFEST_COLUMNS[:3]}, dtype=object).fillna("")
    frame = frame.reindex(columns=list(MANIFEST_COLUMNS), fill_value="")
    data = manifest_bytes(frame)
    expected = _c_engine(data)[list(MANIFEST_COLUMNS)]

    def no_fallback(*args, **kwargs):
        raise AssertionError("the Arrow reader gave up and pandas' C engine read the manifest")

    with monkeypatch.context() as patch:
        patch.setattr(pd, "read_csv", no_fallback)  # what is compared below is the Arrow reader's own answer
        read = manifest_from_bytes(data)
    assert read.astype(object).equals(expected.astype(object))
    assert list(read.columns) == list(MANIFEST_COLUMNS)
    if rows == 70_000:  # the columns keep the reader's blocks (io._read_strings wraps them, no copy)
        assert read["image_id"].array.__arrow_array__().num_chunks > 1


def test_a_header_naming_a_column_twice_is_read_as_the_c_engine_reads_it() -> None:
    data = b"image_id,source,image_id\nx,alpha,y\n"
    read = manifest_from_bytes(data)
    assert read[["image_id", "source"]].astype(object).values.tolist() == [["x", "alpha"]]
    assert "image_id.1" not in read.columns  # the C engine's name for the repeat is not a manifest column
