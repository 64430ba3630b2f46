"""The integrity record's facts are the files' own, whether counted or taken from the record that
vouched for the file it replaces (sync writes it with the frame's row count and no CSV parse)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from covid19_images.core.atomic import write_atomic
from covid19_images.manifest.integrity import check, record_path, write_record


def _csv(rows: int) -> bytes:
    lines = ["a,b\n"] + [f'{n},"two\nlines {n}"\n' for n in range(rows)]  # a record over two lines
    return "".join(lines).encode()


def _facts(data: bytes) -> dict:
    records = list(csv.reader(io.StringIO(data.decode(), newline="")))
    return {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(records) - 1}


def test_the_record_states_the_new_and_the_replaced_file(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    first, second, third = _csv(3), _csv(5), _csv(2)
    write_record(manifest, first)  # counted
    write_atomic(manifest, first)
    write_record(manifest, second, rows=5)  # given by the writer; the replaced file's from the record
    write_atomic(manifest, second)
    record = json.loads(record_path(manifest).read_text())
    assert {k: record[k] for k in ("sha256", "rows")} == _facts(second)
    assert record["previous"] == _facts(first)
    assert check(manifest, second) == _facts(second)["sha256"]
    # a sync killed between the record and the file: the old file still checks, through "previous"
    write_record(manifest, third, rows=2)
    assert check(manifest, second) == _facts(second)["sha256"]
    assert json.loads(record_path(manifest).read_text())["previous"] == _facts(second)


def test_a_file_the_record_does_not_vouch_for_is_not_named_as_previous(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    write_record(manifest, _csv(1))
    write_atomic(manifest, _csv(1) + b"9,edited\n")  # edited by hand after its record was written
    write_record(manifest, _csv(4), rows=4)
    assert "previous" not in json.loads(record_path(manifest).read_text())
