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

    Why: a one-image sync at 50,000 images makes and drops a few hundred megabytes of Arrow buffers
    (the previous manifest, the changed source's table, the new manifest's text). With mimalloc the
    process spent 0.53-0.75 s in the kernel and took 2.35-2.46 s; with the system allocator 0.25-0.37 s
    and 2.02-2.15 s, although it takes 40 % more page faults (five runs each, alternating; jemalloc
    measured like the system allocator, which every platform has). The first sync and a rebuild were
    not slower and peaked lower (docs/benchmarks.md, round sixteen).
    """
    os.environ.setdefault(ARROW_POOL_ENV, "system")
