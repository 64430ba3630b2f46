"""A sync loads OpenBLAS with one thread unless the user chose a number.

Each OpenBLAS (numpy's and SciPy's wheels bring one each) starts a thread per core when it loads;
a sync does no linear algebra, so on a small machine those threads only took CPU from the build.
The count is read from the loaded libraries themselves (threadpoolctl), in a real ``sync`` process.
faiss's OpenBLAS runs on OpenMP (its threads serve a search from scratch) and is left alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from covid19_images.core.workers import BLAS_THREADS_ENV
from tests.conftest import build_synced_root

pytestmark = pytest.mark.upstream

#: what the loaded OpenBLAS libraries say, printed as the process exits
REPORT = """
import atexit, json
def report():
    import threadpoolctl
    infos = threadpoolctl.threadpool_info()
    found = [i["num_threads"] for i in infos if i["internal_api"] == "openblas" and i["threading_layer"] == "pthreads"]
    print(json.dumps(found))
atexit.register(report)
"""
SYNC = (
    REPORT
    + """
import sys
from covid19_images.cli import main
sys.argv = ["covid19-images", "sync", "--offline", "--rebuild", "--quiet", "--root", sys.argv[1]]
main()
"""
)
NUMPY = REPORT + "import numpy, scipy.sparse.csgraph\n"


def _openblas_threads(code: str, *args: str, **env: str) -> list[int]:
    environ = {k: v for k, v in os.environ.items() if k != BLAS_THREADS_ENV} | env
    done = subprocess.run([sys.executable, "-c", code, *args], env=environ, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: OpenBLAS starts one thread either way")
def test_a_sync_loads_openblas_with_one_thread_unless_the_user_chose(tmp_path: Path, mirrors: Path) -> None:
    pytest.importorskip("threadpoolctl")
    assert max(_openblas_threads(NUMPY)) > 1  # a process that only loads them gets one per core
    root = build_synced_root(tmp_path, mirrors, ["ieee8023-covid-chestxray"])
    threads = _openblas_threads(SYNC, str(root))
    assert threads and set(threads) == {1}  # the rebuild loaded numpy and SciPy: each with one thread
    assert set(_openblas_threads(SYNC, str(root), **{BLAS_THREADS_ENV: "2"})) == {2}
