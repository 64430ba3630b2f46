"""A sync sets up the native libraries it loads, unless the user chose otherwise.

* OpenBLAS with one thread: each OpenBLAS (numpy's and SciPy's wheels bring one each) starts a
  thread per core when it loads; a sync does no linear algebra, so on a small machine those threads
  only took CPU from the build (core.workers.one_blas_thread). faiss's OpenBLAS runs on OpenMP (its
  threads serve a search from scratch) and is left alone.
* Arrow's buffers from the system allocator: Arrow's default pool (mimalloc in pyarrow's wheels)
  cost a one-image sync up to a third of a second in the kernel (core.arrow_pool).

Both are read from the loaded libraries themselves (threadpoolctl, pyarrow) as a real ``sync``
process exits, after a rebuild that loaded numpy and SciPy and read and wrote the manifest through Arrow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from covid19_images.core.arrow_pool import ARROW_POOL_ENV
from covid19_images.core.workers import BLAS_THREADS_ENV
from tests.conftest import build_synced_root

pytestmark = pytest.mark.upstream

#: what the loaded libraries say, printed as the process exits
REPORT = """
import atexit, json
def report():
    import pyarrow
    found = {"arrow_pool": pyarrow.default_memory_pool().backend_name, "openblas_threads": None}
    try:
        import threadpoolctl
    except ImportError:
        pass
    else:
        found["openblas_threads"] = [
            i["num_threads"] for i in threadpoolctl.threadpool_info()
            if i["internal_api"] == "openblas" and i["threading_layer"] == "pthreads"
        ]
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
#: a process that is not a sync: what the libraries choose by themselves
ALONE = REPORT + "import numpy, scipy.sparse.csgraph, pyarrow\n"


def _report(code: str, *args: str, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in (BLAS_THREADS_ENV, ARROW_POOL_ENV)} | env
    done = subprocess.run([sys.executable, "-c", code, *args], env=environ, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("native"), mirrors, ["ieee8023-covid-chestxray"])


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: OpenBLAS starts one thread either way")
def test_a_sync_loads_openblas_with_one_thread_unless_the_user_chose(root: Path) -> None:
    pytest.importorskip("threadpoolctl")
    assert max(_report(ALONE)["openblas_threads"]) > 1  # a process that only loads them gets one per core
    threads = _report(SYNC, str(root))["openblas_threads"]
    assert threads and set(threads) == {1}  # the rebuild loaded numpy and SciPy: each with one thread
    assert set(_report(SYNC, str(root), **{BLAS_THREADS_ENV: "2"})["openblas_threads"]) == {2}


def test_a_sync_uses_the_system_allocator_for_arrow_unless_the_user_chose(root: Path) -> None:
    alone = _report(ALONE)["arrow_pool"]
    if alone == "system":
        pytest.skip("this pyarrow has no other allocator: nothing to choose")
    assert _report(SYNC, str(root))["arrow_pool"] == "system"
    assert (root / "manifests" / "manifest.csv").is_file()
    assert _report(SYNC, str(root), **{ARROW_POOL_ENV: alone})["arrow_pool"] == alone  # the user's choice stands
