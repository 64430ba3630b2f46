"""Progress bars only where they redraw: a pipe gets none (no carriage-return garbage), and a run
that draws none does not import tqdm."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import build_synced_root
from tests.fresh_imports import packages_imported

PROJECT = Path(__file__).resolve().parents[2]
CODE = "from covid19_images.core.progress import progress_bar\nfor _ in progress_bar(range(3), desc='probing'): pass\n"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT / "src")}


def test_piped_stderr_gets_no_progress_bar() -> None:
    done = subprocess.run([sys.executable, "-c", CODE], env=_env(), capture_output=True, text=True, check=True)
    assert "probing" not in done.stderr and "\r" not in done.stderr


def test_a_terminal_gets_the_bar() -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a 80x24 terminal
    try:
        subprocess.run([sys.executable, "-c", CODE], env=_env(), stderr=follower, stdout=subprocess.DEVNULL, check=True)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    assert b"probing" in seen and b"3/3" in seen


def test_not_asked_means_no_bar_even_on_a_terminal() -> None:
    from covid19_images.core.progress import show_progress

    assert show_progress(False) is False


def test_no_bar_means_no_tqdm_import_and_the_same_items() -> None:
    code = (
        "from covid19_images.core.progress import progress_bar\n"
        "assert list(progress_bar(iter(range(5)), asked=True, total=5)) == [0, 1, 2, 3, 4]\n"  # stderr is a pipe
        "assert list(progress_bar(range(3), asked=False)) == [0, 1, 2]\n"
    )
    assert packages_imported(code, ("tqdm",)) == []


def test_the_modules_that_draw_bars_do_not_import_tqdm_until_they_draw_one() -> None:
    modules = ("manifest.build", "quality.verify", "quality.verify_annotations", "loaders.cache", "sync.run")
    code = "\n".join(f"import covid19_images.{m}" for m in modules)
    assert packages_imported(code, ("tqdm",)) == []


@pytest.mark.upstream
def test_a_quiet_sync_that_rebuilds_never_imports_tqdm(tmp_path: Path, mirrors: Path) -> None:
    root = build_synced_root(tmp_path, mirrors, ["ieee8023-covid-chestxray"])
    code = (
        "import sys\n"
        "from covid19_images.cli import main\n"
        f"sys.argv = ['covid19-images', 'sync', '--offline', '--rebuild', '--quiet', '--root', {str(root)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
    )
    assert packages_imported(code, ("tqdm",)) == []
    assert (root / "manifests" / "manifest.csv").stat().st_size > 0
