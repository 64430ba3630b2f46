"""The Makefile's environment stamp: content decides a reinstall, file times do not."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _copy(tmp_path: Path) -> Path:
    for name in ("Makefile", "constraints.txt", "pyproject.toml"):
        shutil.copyfile(PROJECT / name, tmp_path / name)
    digest = hashlib.sha256((tmp_path / "constraints.txt").read_bytes() + (tmp_path / "pyproject.toml").read_bytes())
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / f".installed-{digest.hexdigest()[:12]}").touch()
    return tmp_path


def _would_run(folder: Path) -> str:
    return subprocess.run(["make", "-n", "env"], cwd=folder, capture_output=True, text=True, check=True).stdout


def test_newer_file_times_alone_reinstall_nothing(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    later = (folder / "Makefile").stat().st_mtime + 3600
    for name in ("constraints.txt", "pyproject.toml"):
        os.utime(folder / name, (later, later))  # what a branch switch does
    assert "pip install" not in _would_run(folder)


def test_a_changed_pin_reinstalls(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    with (folder / "constraints.txt").open("a") as handle:
        handle.write("# a changed pin\n")
    assert "pip install" in _would_run(folder)
