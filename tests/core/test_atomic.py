"""``write_atomic`` under a real SIGKILL: the old content survives, the leftover is found and removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from covid19_images.core.atomic import remove_temporaries, write_atomic
from covid19_images.core.failpoints import KILL_ENV

WRITER = (
    "import sys; from pathlib import Path; from covid19_images.core.atomic import write_atomic; "
    "write_atomic(Path(sys.argv[1]), b'new content', fault_points='test')"
)


def test_write_replaces_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.csv"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.csv"]


@pytest.mark.skipif(sys.platform != "linux", reason="uses SIGKILL")
@pytest.mark.parametrize("point", ["test.tmp-written", "test.fsynced"])
def test_killed_writer_keeps_the_old_file(tmp_path: Path, point: str) -> None:
    target = tmp_path / "file.csv"
    target.write_bytes(b"old content")
    env = {**os.environ, KILL_ENV: point, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", WRITER, str(target)], env=env, check=False)
    assert done.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old content"
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".file.csv.")
    assert remove_temporaries(target) == leftovers
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.skipif(sys.platform != "linux", reason="uses SIGKILL")
def test_killed_after_the_rename_has_the_new_file(tmp_path: Path) -> None:
    target = tmp_path / "file.csv"
    target.write_bytes(b"old content")
    env = {**os.environ, KILL_ENV: "test.replaced", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", WRITER, str(target)], env=env, check=False)
    assert done.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"new content"
    assert remove_temporaries(target) == []
