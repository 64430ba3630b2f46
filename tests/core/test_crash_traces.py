"""A native crash inside a command prints where every thread was, instead of a bare exit code -11."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

#: runs a real command (status on an empty folder fails as a user error), then crashes the process as a
#: segmentation fault in a native library would
SCRIPT = """
import os, signal, sys
from covid19_images.cli import main
if sys.argv[1] == "command":
    try:
        main.main(["status", "--root", sys.argv[2]], standalone_mode=False)
    except Exception:
        pass
os.kill(os.getpid(), signal.SIGSEGV)
"""


def _crash(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    env.pop("PYTHONFAULTHANDLER", None)
    command = [sys.executable, "-c", SCRIPT, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSEGV is a POSIX signal")
def test_a_crash_after_a_command_started_prints_the_python_stack(tmp_path: Path) -> None:
    done = _crash("command", str(tmp_path))
    assert done.returncode == -11
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert 'File "<string>", line 9 in <module>' in done.stderr  # the line that crashed, named


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSEGV is a POSIX signal")
def test_importing_the_package_leaves_the_crash_handler_alone() -> None:
    done = _crash("import-only")
    assert done.returncode == -11
    assert "Fatal Python error" not in done.stderr
