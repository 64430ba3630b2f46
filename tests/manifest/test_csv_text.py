"""The column-wise CSV writer gives pandas' ``to_csv`` bytes exactly: manifests are diffed by git."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from covid19_images.manifest.build import MANIFEST_FILE, manifest_bytes, read_manifest
from covid19_images.manifest.csv_text import _text_columns, frame_csv_bytes
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


def _is_fast(frame: pd.DataFrame) -> bool:
    return _text_columns(frame) is not None


@pytest.mark.parametrize("dtype", TEXT_DTYPES, ids=str)
def test_adversarial_values_are_written_as_pandas_writes_them(dtype) -> None:
    values = pd.Series(ADVERSARIAL, dtype=dtype)
    frame = pd.DataFrame({"image_id": values, "extra": values[::-1].to_numpy(), 'odd, "label"\n': values})
    assert _is_fast(frame)  # the column-wise writer ran, not pandas behind it
    assert frame_csv_bytes(frame) == _pandas(frame)


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
    assert frame_csv_bytes(frame) == _pandas(frame)


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
