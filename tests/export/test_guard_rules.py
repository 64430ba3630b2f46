"""An export's destination rules, one by one, on hand-made folders (no sync): where ``--out`` may
go, what ``--overwrite`` may replace, how a build is swapped in and a killed swap repaired, what
counts as a full disk, and what a built export must hold before it is swapped in.

``test_export_safety.py`` proves the same promises end to end on a synced root; these are the
fast tests ``make mutation`` runs for ``export.guard``.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from covid19_images.export.guard import (
    ExportBusy,
    ExportError,
    check_destination,
    check_replaceable,
    clone_file,
    destination_lock,
    disk_full,
    is_disk_full,
    root_reading,
    staging,
    swap_in,
    verify_export,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A data root: git folder, two checkouts (one a link to a folder elsewhere), manifests."""
    root = tmp_path / "root"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "datasets" / "a" / "images").mkdir(parents=True)
    elsewhere = tmp_path / "disk2" / "b-checkout"
    elsewhere.mkdir(parents=True)
    (root / "datasets" / "b").symlink_to(elsewhere)
    (root / "manifests").mkdir()
    return root


def test_out_equal_to_containing_or_inside_the_root_data_is_refused(root: Path, tmp_path: Path) -> None:
    refused = {
        root: "is the data root itself",
        tmp_path: "contains the data root",
        root / ".git": "overlaps",
        root / ".git" / "objects" / "x": "overlaps",
        root / "datasets": "overlaps",
        root / "datasets" / "a": "overlaps",
        root / "datasets" / "a" / "images" / "out": "overlaps",
        root / "datasets" / "next-source": "overlaps",  # where the next checkout goes
        root / "datasets" / "b" / "out": "overlaps",  # through the link
        tmp_path / "disk2": "overlaps",  # holds checkout b
        tmp_path / "disk2" / "b-checkout" / "x": "overlaps",  # checkout b reached directly
        root / "manifests": "overlaps",
        root / "manifests" / "export": "overlaps",
    }
    for out, message in refused.items():
        with pytest.raises(ExportError, match=message) as caught:
            check_destination(out, root)
        assert str(out.resolve()) in str(caught.value), out
        if message == "overlaps":
            assert str(caught.value).endswith(
                "(its git folder, a source checkout or the manifests): choose a folder outside them"
            )
    for fine in (root / "build" / "export", root / "export", tmp_path / "elsewhere", tmp_path / "disk2-export"):
        check_destination(fine, root)


def test_a_link_to_the_root_or_a_relative_path_is_resolved_first(root: Path, tmp_path: Path) -> None:
    (tmp_path / "alias").symlink_to(root)
    with pytest.raises(ExportError, match=r"is the data root itself"):
        check_destination(tmp_path / "alias", root)
    with pytest.raises(ExportError, match=r"overlaps"):
        check_destination(tmp_path / "alias" / "datasets" / "a", tmp_path / "alias")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with pytest.raises(ExportError, match=r"overlaps"):
            check_destination(Path("manifests/out"), Path("."))
        check_destination(Path("build/out"), Path("."))
    finally:
        os.chdir(cwd)


def test_a_worktree_root_protects_the_git_folder_its_git_file_names(tmp_path: Path) -> None:
    real_git = tmp_path / "elsewhere.git"
    real_git.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / ".git").write_text(f"gitdir: {real_git}\n")
    with pytest.raises(ExportError, match=r"overlaps"):
        check_destination(real_git / "out", root)
    (root / ".git").write_text("not a pointer\n")
    check_destination(real_git / "out", root)
    odd = tmp_path / "g\udcff"  # a folder name that is not UTF-8 (bytes 0x67 0xff)
    os.mkdir(os.fsencode(odd))
    (root / ".git").write_bytes(b"gitdir: " + os.fsencode(odd) + b"\n")
    with pytest.raises(ExportError, match="overlaps"):
        check_destination(odd / "out", root)


def test_overwrite_replaces_only_nothing_an_empty_folder_or_a_previous_export(tmp_path: Path) -> None:
    out = tmp_path / "out"
    check_replaceable(out, overwrite=False)  # absent
    out.mkdir()
    check_replaceable(out, overwrite=False)  # empty
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"is not empty"):
        check_replaceable(out, overwrite=False)
    with pytest.raises(
        ExportError,
        match=r"not a covid19-images export \(no export.json\): "
        r"--overwrite only replaces a previous export; choose a new folder$",
    ):
        check_replaceable(out, overwrite=True)
    (out / "export.json").mkdir()  # a folder of that name is not an export record
    with pytest.raises(ExportError, match=r"not a covid19-images export"):
        check_replaceable(out, overwrite=True)
    (out / "export.json").rmdir()
    (out / "export.json").write_text("{}")
    check_replaceable(out, overwrite=True)
    with pytest.raises(FileExistsError):
        check_replaceable(out, overwrite=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match=r"is a file, not a folder"):
        check_replaceable(tmp_path / "file", overwrite=True)


def test_a_build_is_swapped_in_and_the_old_export_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with staging(out) as built:
        assert built.parent == tmp_path and built.name.startswith(".out.export-") and built.name.endswith(".tmp")
        (built / "new.txt").write_text("new")
        swap_in(built, out)
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with staging(empty) as built:
        (built / "x").write_text("x")
        swap_in(built, empty)
    assert (empty / "x").read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["empty", "out"]
    absent = tmp_path / "absent"
    with staging(absent) as built:
        (built / "y").write_text("y")
        swap_in(built, absent)
    assert (absent / "y").read_text() == "y" and sorted(p.name for p in tmp_path.iterdir()) == [
        "absent",
        "empty",
        "out",
    ]


def test_an_old_export_left_aside_by_a_crash_is_cleaned_by_the_next_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after both renames, before the old export is deleted: the folder moved aside is one
    the next export's lock recognises (and deletes, the new export being in place)."""
    import covid19_images.export.guard as guard

    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with staging(out) as built:
        (built / "new.txt").write_text("new")
        with monkeypatch.context() as crash:
            crash.setattr(guard.shutil, "rmtree", lambda *args, **kwargs: None)  # the process dies here
            swap_in(built, out)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "out")
    assert len(left) == 1 and left[0].startswith(".out.export-") and left[0].endswith(".old")
    with destination_lock(out):
        assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["out"]


def test_a_failed_build_leaves_nothing_and_the_old_export_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match=r"boom"), staging(out) as built:
        (built / "half").write_text("x")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (out / "old.txt").read_text() == "old"


def test_a_failed_rename_puts_the_old_export_back(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    built = tmp_path / ".out.export-ab12cd34.tmp"  # never made: the second rename fails
    with pytest.raises(FileNotFoundError):
        swap_in(built, out)
    assert (out / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_folder_lock_restores_an_export_a_killed_swap_moved_aside_and_drops_builds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    aside = tmp_path / ".out.export-0001.old"
    aside.mkdir()
    (aside / "export.json").write_text("{}")
    for name in (".out.export-0002.tmp", ".out.export-0003.tmp", ".other.export-0004.tmp"):
        (tmp_path / name).mkdir()
    with destination_lock(out):
        assert (out / "export.json").is_file()
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [".other.export-0004.tmp", "out"]
    (tmp_path / ".out.export-0005.old").mkdir()  # the swap had finished: the export is in place
    with destination_lock(out):
        assert (out / "export.json").is_file() and not (tmp_path / ".out.export-0005.old").exists()


def test_one_export_at_a_time_writes_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    with destination_lock(out):
        assert out.parent.is_dir()
        with pytest.raises(ExportBusy, match=rf"another export is writing {out}"), destination_lock(out):
            pass
        with destination_lock(tmp_path / "deep" / "other"):
            pass
    with destination_lock(out):
        pass


def test_exports_share_the_root_lock_and_a_sync_holding_it_refuses_them(root: Path) -> None:
    import fcntl

    with root_reading(root), root_reading(root):
        pass
    from covid19_images.sync.run import LOCK_NAME

    lock = root / ".git" / LOCK_NAME
    handle = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from covid19_images.export.guard import root_reading\n"
                "try:\n    with root_reading(Path(sys.argv[1])): print('read')\n"
                "except Exception as e: print(type(e).__name__, e)",
                str(root),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            check=True,
        )
    finally:
        os.close(handle)
    assert child.stdout.startswith("ExportBusy a sync is running on"), child.stdout + child.stderr
    with root_reading(root, wait=True):
        pass


def test_a_root_without_git_has_no_sync_to_wait_for(tmp_path: Path) -> None:
    with root_reading(tmp_path):
        pass


def test_a_full_disk_is_recognised_by_errno_message_or_cause() -> None:
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        assert is_disk_full(OSError(code, os.strerror(code)))
        assert is_disk_full(OSError(code, "no words"))
    for text in ("No space left on device", "Disk quota exceeded", "File too large"):
        assert is_disk_full(RuntimeError(f"writer failed: {text} (in a library)"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("bad image"))
    try:
        try:
            raise OSError(errno.ENOSPC, "full")
        except OSError as inner:
            raise RuntimeError("cannot write shard") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    try:
        try:
            raise OSError(errno.ENOSPC, "full")
        except OSError:
            raise RuntimeError("while cleaning up") from None
    except RuntimeError as outer:
        assert is_disk_full(outer)  # the context is kept even when the cause is suppressed
    message = str(disk_full(Path("/x/out"), OSError(errno.ENOSPC, "No space left on device")))
    assert "/x/out is full" in message and "No space left on device" in message
    assert message.endswith("and the partial export was removed: free space there or choose another --out")


def test_a_cloned_file_is_a_separate_copy(tmp_path: Path) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(b"\x89PNG" + bytes(range(256)) * 4096)
    target = tmp_path / "b.png"
    clone_file(str(source), target)
    assert target.read_bytes() == source.read_bytes()
    assert os.stat(target).st_ino != os.stat(source).st_ino and os.stat(source).st_nlink == 1
    with open(target, "r+b") as handle:
        handle.write(b"EDIT")
    assert source.read_bytes().startswith(b"\x89PNG")


# --- what a built export must hold -----------------------------------------------------------


def _write_tar(path: Path, keys: list[str]) -> None:
    with tarfile.open(path, "w") as tar:
        for key in keys:
            for ext in ("png", "json", "cls"):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = 1
                tar.addfile(info, io.BytesIO(b"0"))


def _write_tfrecord(path: Path, n: int, cut: int = 0) -> None:
    data = b"".join(len(b"abc").to_bytes(8, "little") + b"\xa5" * 4 + b"abc" + b"\x5a" * 4 for _ in range(n))
    path.write_bytes(data[: len(data) - cut])


def _export(tmp_path: Path, shards: dict, counts: dict, rows: int, **files: bytes) -> Path:
    out = tmp_path / "built"
    out.mkdir(exist_ok=True)
    (out / "export.json").write_text(json.dumps({"shards": shards, "counts": counts}))
    lines = ["image_id,export_path"] + [f"i{k},images/{k}.png" for k in range(rows)]
    (out / "manifest.csv").write_text("\n".join(lines) + "\n")
    return out


def test_a_complete_sharded_export_verifies(tmp_path: Path) -> None:
    out = _export(
        tmp_path,
        {
            "train": [{"file": "train-0.tar", "count": 2}, {"file": "train-1.tfrecord", "count": 3}],
            "val": [{"file": "val-0.parquet", "count": 2}],
        },
        {"train": 5, "val": 2},
        rows=7,
    )
    _write_tar(out / "train-0.tar", ["a", "b"])
    _write_tfrecord(out / "train-1.tfrecord", 3)
    pq.write_table(pa.table({"x": [1, 2]}), out / "val-0.parquet")
    verify_export(out)
    _write_tar(out / "train-0.tar", ["a"])
    with pytest.raises(ExportError, match=r"shard train-0.tar of train holds 1 items, export.json declares 2"):
        verify_export(out)
    _write_tar(out / "train-0.tar", ["a", "b"])
    _write_tfrecord(out / "train-1.tfrecord", 4)
    with pytest.raises(ExportError, match=r"train-1.tfrecord of train holds 4 items"):
        verify_export(out)
    for cut in (1, 10, 20, 50):
        _write_tfrecord(out / "train-1.tfrecord", 3, cut=cut)
        with pytest.raises(ValueError, match=r"train-1.tfrecord: (cut inside a record header|record [12] is cut)"):
            verify_export(out)
    _write_tfrecord(out / "train-1.tfrecord", 3)
    pq.write_table(pa.table({"x": [1, 2, 3]}), out / "val-0.parquet")
    with pytest.raises(ExportError, match=r"val-0.parquet of val holds 3 items"):
        verify_export(out)
    (out / "val-0.parquet").unlink()
    with pytest.raises(ExportError, match=r"val-0.parquet of val holds None items"):
        verify_export(out)


def test_counts_must_match_the_manifest_and_a_shard_of_unknown_kind_is_refused(tmp_path: Path) -> None:
    out = _export(tmp_path, {"train": [{"file": "t.bin", "count": 1}]}, {"train": 1}, rows=1)
    (out / "t.bin").write_bytes(b"x")
    with pytest.raises(ExportError, match=r"t.bin of train holds None items"):
        verify_export(out)
    out = _export(tmp_path, {}, {"train": 2, "val": 1}, rows=2)
    with pytest.raises(ExportError, match=r"export.json counts 3 items but manifest.csv lists 2"):
        verify_export(out)


def test_an_image_folder_export_must_hold_every_file_its_manifest_names(tmp_path: Path) -> None:
    out = _export(tmp_path, {}, {"train": 2, "val": 1}, rows=3)
    (out / "images").mkdir()
    for k in range(3):
        (out / "images" / f"{k}.png").write_bytes(b"x")
    verify_export(out)
    (out / "images" / "1.png").unlink()
    (out / "images" / "2.png").unlink()
    (out / "images" / "2.png").mkdir()  # a folder is not the file
    with pytest.raises(ExportError, match=r"2 exported files missing, e.g. images/1.png"):
        verify_export(out)
