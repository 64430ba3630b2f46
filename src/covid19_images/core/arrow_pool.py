"""Which allocator Arrow's buffers come from in a sync.

pyarrow's wheels ship three allocators for the buffers behind every pandas text column, the
manifest's CSV parse and the text written back (mimalloc is the default on Linux since Arrow 17).
Arrow reads ``ARROW_DEFAULT_MEMORY_POOL`` once, when its default pool is first asked for, so the
choice has to be in the environment before the first Arrow allocation.
"""

from __future__ import annotations

import os

#: Arrow's own setting (jemalloc, mimalloc or system), read when its default pool is first used
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def system_arrow_pool() -> None:
    """Ask Arrow for the C library's allocator, unless the user chose a pool; call before pyarrow allocates.

    Why: mimalloc reserves its arena (1 GiB) with ``madvise(MADV_HUGEPAGE)`` and gives freed memory back
    with ``MADV_DONTNEED`` (670 times in a one-image sync at 50,000 images), so the sync's few hundred
    megabytes of short-lived buffers keep faulting in fresh 2 MB pages that the kernel zeroes (12 % of
    the process's samples in ``clear_page_erms``, absent with the system allocator). How much that costs
    depends on what the machine's memory is doing: right after large writes (a root just copied, as in
    the benchmark's fresh roots) the sync took 2.35-2.46 s with mimalloc and 2.02-2.15 s with the system
    allocator (0.53-0.75 s against 0.25-0.37 s in the kernel); on a quiet machine the two are within the
    noise (2.00-2.13 s against 1.99-2.07 s). At 200,000 images it saved 0.8-1.3 s either way. The
    first sync and a rebuild were not slower; jemalloc measured like the system allocator, which every
    platform has (docs/benchmarks.md, round sixteen).
    """
    os.environ.setdefault(ARROW_POOL_ENV, "system")
