"""The suite's ``--dist loadgroup`` really groups: tests sharing an ``xdist_group`` run on one worker.

Modules with expensive module fixtures (the demo, the README, the loopback portal roots, TensorFlow)
and tests that build on each other rely on it. pytest 9.2 silently broke it with pytest-xdist 3.8
(pytest-dev/pytest-xdist#1386: the group suffix written into the node id no longer takes effect),
so the suite ran every such fixture once per worker and split ordered tests; constraints.txt pins
a pytest that groups. This runs a real two-worker session on three grouped tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

GROUPED = """
import pytest

pytestmark = pytest.mark.xdist_group("together")


def test_a():
    pass


def test_b():
    pass


def test_c():
    pass
"""


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, "-p", "no:randomly", "test_grouped.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    workers = re.findall(r"\[(gw\d+)\] .*PASSED", result.stdout)
    assert len(workers) == 3, result.stdout[-2000:]
    assert len(set(workers)) == 1, f"one group ran on {sorted(set(workers))}:\n{result.stdout[-2000:]}"
