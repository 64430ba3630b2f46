"""The integrity record's facts are the files' own, whether counted or taken from the record that
vouched for the file it replaces (sync writes it with the frame's row count and no CSV parse)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from pathlib import Path

import pandas as pd

from covid19_images.core.atomic import write_atomic
from covid19_images.core.schema import MANIFEST_COLUMNS
from covid19_images.manifest.integrity import RACY_NS, check, file_identity, record_path, settled_identity, write_record
from covid19_images.manifest.io import MANIFEST_FILE, MANIFEST_IDENTITY, MANIFEST_SHA256, manifest_bytes, read_manifest


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


def _written_and_read(manifest: Path, data: bytes) -> tuple[str, tuple[int, ...]]:
    """Write ``data`` as a sync does, then what sync keeps of reading it: the checked digest and the
    file's identity then."""
    write_record(manifest, data)
    write_atomic(manifest, data)
    return check(manifest, manifest.read_bytes()), file_identity(manifest.stat())


def test_the_manifest_sync_read_and_kept_unchanged_is_recorded_as_previous(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    first = _csv(3)
    read = _written_and_read(manifest, first)
    write_record(manifest, _csv(5), rows=5, read=read)
    assert json.loads(record_path(manifest).read_text())["previous"] == _facts(first)


def test_a_manifest_changed_after_sync_read_it_is_checked_again(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    first = _csv(3)
    read = _written_and_read(manifest, first)
    # edited by hand while the sync ran (a new file: another identity); its record does not vouch for it
    write_atomic(manifest, first + b"9,edited\n")
    write_record(manifest, _csv(5), rows=5, read=read)
    assert "previous" not in json.loads(record_path(manifest).read_text())
    # replaced by the same bytes (another inode): checked again, and it checks
    read = _written_and_read(manifest, first)
    write_atomic(manifest, first)
    assert file_identity(manifest.stat()) != read[1]
    write_record(manifest, _csv(2), rows=2, read=read)
    assert json.loads(record_path(manifest).read_text())["previous"] == _facts(first)


def test_an_identity_vouches_only_once_the_file_has_settled(tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    path.write_bytes(_csv(2))
    status = path.stat()
    assert settled_identity(status, time.time_ns()) is None  # just written: could change within this tick
    changed = max(status.st_mtime_ns, status.st_ctime_ns)
    assert settled_identity(status, changed + RACY_NS) is None
    assert settled_identity(status, changed + RACY_NS + 1) == file_identity(status)


def test_a_manifest_read_just_after_it_was_written_vouches_for_no_identity(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    manifest = tmp_path / MANIFEST_FILE
    data = manifest_bytes(pd.DataFrame({column: ["x"] for column in MANIFEST_COLUMNS}))
    write_record(manifest, data)
    write_atomic(manifest, data)
    frame = read_manifest(tmp_path)
    assert frame.attrs[MANIFEST_SHA256] == hashlib.sha256(data).hexdigest()
    assert MANIFEST_IDENTITY not in frame.attrs
