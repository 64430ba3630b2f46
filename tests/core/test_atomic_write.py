"""``write_atomic``, the one way manifests and cache metadata reach the disk, seen from outside.

The real file system calls are recorded (``os.fsync`` by the file its descriptor names,
``os.replace`` by its arguments) and then performed: the promise is an order, so the test
checks the order. A sync-level version is in ``tests/sync/test_sync_outcomes.py``.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from covid19_images.manifest.build import write_atomic

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="names file descriptors through /proc/self/fd")


@pytest.fixture
def recorded(monkeypatch) -> list[tuple[str, str, int]]:
    """Every fsync ``("fsync", path, size at that moment)`` and replace ``("replace", src, dst)``."""
    events: list[tuple[str, str, int | str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_size))
        real_fsync(fd)

    def replace(src, dst, **kwargs) -> None:
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_data_is_fsynced_then_renamed_then_the_folder_is_fsynced(tmp_path: Path, recorded) -> None:
    target = tmp_path / "new" / "folders" / "manifest.csv"
    data = b"a,b\n" * 5000
    write_atomic(target, data)
    assert target.read_bytes() == data
    assert [e[0] for e in recorded] == ["fsync", "replace", "fsync"]
    (_, synced, size), (_, src, dst), (_, folder, _) = recorded
    assert synced == src and Path(dst) == target, "the file fsynced is the one renamed into place"
    # the temporary's name is the one remove_stale_temporaries sweeps: .<name>.<random>.tmp
    assert Path(src).parent == target.parent and Path(src).match(".manifest.csv.*.tmp")
    assert size == len(data), "fsync came after the last byte was written"
    assert folder == str(target.parent)
    assert sorted(p.name for p in target.parent.iterdir()) == ["manifest.csv"], "no temporary left"


def test_replacing_an_existing_file_leaves_old_or_new_never_half(tmp_path: Path) -> None:
    target = tmp_path / "m.csv"
    write_atomic(target, b"old\n")
    write_atomic(target, b"new\n" * 3)
    assert target.read_bytes() == b"new\n" * 3
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "m.csv"
    write_atomic(target, b"old\n")

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, b"new\n")
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]


def test_failure_after_the_rename_reports_the_real_error(tmp_path: Path, monkeypatch) -> None:
    """The folder fsync fails after the rename: the new file is in place and the caller sees
    that error, not a complaint about the temporary already being gone."""
    target = tmp_path / "m.csv"
    real_fsync = os.fsync

    def folder_fails(fd: int) -> None:
        if os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", folder_fails)
    with pytest.raises(OSError, match="Input/output error"):
        write_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n"


def test_checkpoints_mark_each_step_for_the_fault_tests(tmp_path: Path, monkeypatch) -> None:
    """tests/sync/test_sync_faults.py kills a sync at these names; they must be reached in this order."""
    from covid19_images.core import failpoints

    trace = tmp_path / "trace.txt"
    monkeypatch.setenv(failpoints.TRACE_ENV, str(trace))
    failpoints.reset()
    write_atomic(tmp_path / "out" / "m.csv", b"x\n")
    failpoints.reset()
    assert trace.read_text().split() == ["write.tmp-written:1", "write.fsynced:1", "write.replaced:1"]
    from covid19_images.core import atomic

    atomic.write_atomic(tmp_path / "out" / "other.csv", b"x\n")  # without fault_points: no checkpoint
    failpoints.reset()
    assert trace.read_text().split() == ["write.tmp-written:1", "write.fsynced:1", "write.replaced:1"]


@pytest.mark.parametrize("umask", [0o002, 0o022, 0o077])
def test_written_file_has_the_permissions_the_umask_allows(tmp_path: Path, umask: int) -> None:
    """A manifest in a shared root is group-readable when the user's umask says so (mkstemp alone gives 0600)."""
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "m.csv", b"x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.csv").stat().st_mode) == 0o666 & ~umask
