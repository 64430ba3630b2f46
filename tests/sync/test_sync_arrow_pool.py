"""A sync takes Arrow's buffers from the system allocator unless the user chose a pool.

Arrow's default pool (mimalloc in pyarrow's wheels) cost a one-image sync up to a third of a second in
the kernel (core.arrow_pool). The pool is read from Arrow itself as a real ``sync`` process exits,
after a rebuild that read and wrote the manifest through Arrow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from covid19_images.core.arrow_pool import ARROW_POOL_ENV
from tests.conftest import build_synced_root

pytestmark = pytest.mark.upstream

SYNC = """
import atexit, sys
def report():
    import pyarrow
    print("pool", pyarrow.default_memory_pool().backend_name)
atexit.register(report)
from covid19_images.cli import main
sys.argv = ["covid19-images", "sync", "--offline", "--rebuild", "--quiet", "--root", sys.argv[1]]
main()
"""
#: a process that is not a sync: what Arrow chooses by itself
ALONE = "import pyarrow; print('pool', pyarrow.default_memory_pool().backend_name)"


def _pool(code: str, *args: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != ARROW_POOL_ENV} | env
    done = subprocess.run([sys.executable, "-c", code, *args], env=environ, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    word, pool = done.stdout.strip().splitlines()[-1].split()
    assert word == "pool"
    return pool


def test_a_sync_uses_the_system_allocator_for_arrow_unless_the_user_chose(tmp_path: Path, mirrors: Path) -> None:
    pytest.importorskip("pyarrow")
    alone = _pool(ALONE)
    if alone == "system":
        pytest.skip("this pyarrow has no other allocator: nothing to choose")
    root = build_synced_root(tmp_path, mirrors, ["ieee8023-covid-chestxray"])
    assert _pool(SYNC, str(root)) == "system"
    assert (root / "manifests" / "manifest.csv").is_file()
    assert _pool(SYNC, str(root), **{ARROW_POOL_ENV: alone}) == alone  # the user's choice stands
