"""Progress bars only where they redraw: a pipe gets none (no carriage-return garbage)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
CODE = (
    "from tqdm.auto import tqdm\n"
    "from covid19_images.core.progress import show_progress\n"
    "for _ in tqdm(range(3), desc='probing', disable=not show_progress(True)): pass\n"
)


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
