"""How many threads a pass over many files gets."""

from __future__ import annotations

import os

#: Upper bound on I/O threads: past this, a laptop disk or a network share only thrashes.
MAX_IO_WORKERS = 8


def io_workers(requested: int | None = None) -> int:
    """Threads for I/O-bound work over many files (hashing, probing, verifying).

    Twice the cores (a thread mostly waits for the disk, and the decoders release the GIL),
    at most :data:`MAX_IO_WORKERS`.

    Args:
        requested: an explicit count from the caller; used as is when given.
    """
    if requested:
        return requested
    return min(MAX_IO_WORKERS, (os.cpu_count() or 1) * 2)


def default_workers() -> int:
    """Worker count for parallel decoding: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: OpenBLAS reads it when it loads (numpy's and SciPy's wheels each bring their own OpenBLAS)
BLAS_THREADS_ENV = "OPENBLAS_NUM_THREADS"


def one_blas_thread() -> None:
    """Ask OpenBLAS for one thread, unless the user chose a number; call before numpy loads.

    Why: each OpenBLAS starts a thread per core as it loads and keeps them spinning a while. A
    sync does no linear algebra (its probe workers are one process per core already), so on two
    cores those threads only took CPU from the build and its git processes: 0.2-0.3 s of CPU of
    a one-image sync at 50,000 images (the imports alone 0.75 -> 0.53 s of CPU).
    """
    os.environ.setdefault(BLAS_THREADS_ENV, "1")
