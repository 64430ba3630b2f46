"""An export never destroys data: where ``--out`` may be, how an old export is replaced, who may
write at the same time, what a copy of an original is, and what a full disk leaves behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from covid19_images.core.failpoints import KILL_ENV, STOP_ENV, TRACE_ENV
from covid19_images.export import ExportBusy, ExportError, export
from covid19_images.loaders._select import NoItemsError
from covid19_images.sync.run import SyncBusy, sync
from tests.conftest import build_synced_root
from tests.sync.test_sync_faults import _wait_stopped

pytestmark = [pytest.mark.upstream, pytest.mark.xdist_group("export")]
SOURCES = ("darshan-xray", "figure1-xray")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("export-safety"), mirrors, SOURCES)


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (``.git`` included) with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (KILL_ENV, STOP_ENV, TRACE_ENV)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    return {**env, **extra}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "covid19_images.cli", *args]


@pytest.mark.parametrize(
    "where",
    ["root", "datasets", "checkout", "inside-checkout", "manifests", "git", "parent-of-root", "link-into-checkout"],
)
def test_out_at_inside_or_around_the_data_root_is_refused_and_nothing_is_touched(
    root: Path, tmp_path: Path, where: str
) -> None:
    link = tmp_path / "link"
    link.symlink_to(root / "datasets" / "darshan-xray")
    out = {
        "root": root,
        "datasets": root / "datasets",
        "checkout": root / "datasets" / "figure1-xray",
        "inside-checkout": root / "datasets" / "figure1-xray" / "exported",
        "manifests": root / "manifests",
        "git": root / ".git" / "x",
        "parent-of-root": root.parent,
        "link-into-checkout": link / "exported",
    }[where]
    before = fingerprint(root)
    with pytest.raises(ExportError) as refused:
        export(out, "webdataset", root=root, overwrite=True)
    assert str(out.resolve()) in str(refused.value) and "choose a folder" in str(refused.value)
    assert fingerprint(root) == before
    assert not (root / "datasets" / "figure1-xray" / "exported").exists()


def test_the_cli_refuses_out_equal_to_the_root_with_a_message(root: Path) -> None:
    from click.testing import CliRunner

    from covid19_images.cli import main

    before = fingerprint(root)
    result = CliRunner().invoke(
        main, ["export", "--root", str(root), "--out", str(root), "--format", "hf", "--overwrite"]
    )
    assert result.exit_code == 1 and "is the data root itself" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert fingerprint(root) == before


def test_overwrite_replaces_only_once_the_new_export_is_complete(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "wds"
    export(out, "webdataset", root=root, shard_size=4)
    before = fingerprint(out)
    with pytest.raises(NoItemsError):  # fails after the old export would have been deleted
        export(out, "webdataset", root=root, labels=["other"], overwrite=True)
    assert fingerprint(out) == before
    replaced = export(out, "webdataset", root=root, shard_size=50, overwrite=True)
    assert sorted(p.name for p in out.glob("*.tar")) == sorted(
        f"{split}-{n:06d}.tar" for split, count in replaced.counts.items() for n in range(-(-count // 50))
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".wds.export-")]


def test_overwrite_refuses_a_folder_that_is_not_an_export(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("years of work")
    with pytest.raises(ExportError, match="not a covid19-images export"):
        export(out, "imagefolder", root=root, overwrite=True)
    assert (out / "chapter1.tex").read_text() == "years of work"


def test_imagefolder_files_are_copies_and_editing_one_leaves_the_data_alone(root: Path, tmp_path: Path) -> None:
    export(tmp_path / "if", "imagefolder", root=root)
    rows = pd.read_csv(tmp_path / "if" / "manifest.csv", dtype=str, keep_default_na=False)
    originals = {}
    for _, row in rows.iterrows():
        copy, original = tmp_path / "if" / row["export_path"], root / row["path"]
        assert copy.read_bytes() == original.read_bytes()
        assert not os.path.samefile(copy, original)
        originals[original] = original.read_bytes()
    first = tmp_path / "if" / rows.iloc[0]["export_path"]
    with open(first, "r+b") as handle:  # edit in place, as an image editor saving over the file does
        handle.write(b"\0" * 16)
    assert {p: p.read_bytes() for p in originals} == originals


def test_a_second_export_into_the_same_folder_and_a_sync_wait_for_a_running_export(
    root: Path, tmp_path: Path, mirrors: Path
) -> None:
    out = tmp_path / "busy"
    first = subprocess.Popen(
        _cli("export", "--root", str(root), "--out", str(out), "--format", "webdataset"),
        env=_env(**{STOP_ENV: "export.verified"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_stopped(first)
        with pytest.raises(ExportBusy, match="another export is writing"):
            export(out, "webdataset", root=root, shard_size=3)
        with pytest.raises(SyncBusy):  # the export holds the root: sync cannot rewrite what it reads
            sync(root, mirror=mirrors, progress=False)
        side = export(tmp_path / "beside", "webdataset", root=root)  # exports of one root share it
        assert sum(side.counts.values()) > 0
        os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=300) == 0, first.communicate()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    rows = pd.read_csv(out / "manifest.csv", dtype=str)
    assert len(rows) == sum(side.counts.values())
    assert sorted(p.name for p in out.glob("*.tar")) == sorted(p.name for p in (tmp_path / "beside").glob("*.tar"))


def test_an_export_refuses_while_a_sync_rewrites_the_root(root: Path, tmp_path: Path, mirrors: Path) -> None:
    syncing = subprocess.Popen(
        _cli("sync", "--root", str(root), "--mirror", str(mirrors), "--quiet"),
        env=_env(**{STOP_ENV: "sync.locked"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_stopped(syncing)
        with pytest.raises(ExportBusy, match="a sync is running"):
            export(tmp_path / "during-sync", "webdataset", root=root)
        assert not (tmp_path / "during-sync").exists() or not any((tmp_path / "during-sync").iterdir())
    finally:
        os.kill(syncing.pid, signal.SIGCONT)
        syncing.wait(timeout=300)


def test_a_killed_swap_is_repaired_by_the_next_export(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "swap"
    export(out, "webdataset", root=root)
    before = fingerprint(out)
    killed = subprocess.run(
        _cli("export", "--root", str(root), "--out", str(out), "--format", "webdataset", "--overwrite"),
        env=_env(**{KILL_ENV: "export.verified"}),
        capture_output=True,
    )
    assert killed.returncode == -signal.SIGKILL
    assert [p.name.endswith(".tmp") for p in tmp_path.iterdir() if p.name.startswith(".swap.export-")] == [True]
    export(out, "webdataset", root=root, shard_size=7, overwrite=True)
    assert fingerprint(out) != before and (out / "export.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".swap.export-")]


DISK_FULL = r"""
set -e
mount -t tmpfs -o size={size}k tmpfs {mount}
{python} -m covid19_images.cli export --root {root} --out {mount}/out --format {fmt} --image-size 256 --shard-size 4 \
    && status=0 || status=$?
echo "STATUS $status"
ls -A {mount}
"""


@pytest.mark.parametrize("fmt", ["webdataset", "imagefolder", "hf"])
def test_a_full_disk_ends_with_a_message_naming_the_output_and_leaves_nothing(
    root: Path, tmp_path: Path, fmt: str
) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    mount = tmp_path / "small"
    mount.mkdir()
    script = DISK_FULL.format(size=160, mount=mount, python=sys.executable, root=root, fmt=fmt)
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    if os.geteuid() != 0:
        command[1:1] = ["--user", "--map-root-user"]
    probe = subprocess.run([*command[:-3], "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private mount here: {probe.stderr.decode(errors='replace').strip()}")
    result = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=600)
    assert "STATUS 1" in result.stdout, (result.stdout, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "cannot join" not in result.stderr
    assert f"the file system holding {mount}/out is full" in result.stderr
    left = result.stdout.split("STATUS 1", 1)[1].split()
    assert left == [".out.export.lock"], left  # no partial export, no staging folder


def test_a_file_edited_since_the_sync_is_not_exported_under_its_old_hash(tmp_path: Path, mirrors: Path) -> None:
    from covid19_images.export import ChangedFileError

    edited_root = build_synced_root(tmp_path, mirrors, ["figure1-xray"])
    export(tmp_path / "before", "webdataset", root=edited_root)
    row = pd.read_csv(tmp_path / "before" / "manifest.csv", dtype=str, keep_default_na=False).iloc[0]
    target = edited_root / row["path"]
    target.write_bytes(target.read_bytes() + b"\0")  # still decodes; no longer the recorded bytes
    for fmt, size in (("imagefolder", None), ("webdataset", 32)):
        with pytest.raises(ChangedFileError, match=f"{row['path']} changed since the manifest was built"):
            export(tmp_path / fmt, fmt, root=edited_root, image_size=size)
        assert not (tmp_path / fmt).exists() or not any((tmp_path / fmt).iterdir())
