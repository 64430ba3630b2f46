"""A native crash names where it happened: every thread's Python stack on stderr.

Why: a sync drives C libraries (PIL, SimpleITK, pydicom's decoders, PyAV, pyarrow) from worker
threads; a segmentation fault inside one otherwise ends the command with exit code -11 and not a
word of where it was. The command-line entry points turn this on; importing the package does not.
"""

from __future__ import annotations

import faulthandler


def enable_crash_traces() -> None:
    """Have :mod:`faulthandler` print every thread's stack on a fatal signal (if nothing enabled it yet)."""
    if not faulthandler.is_enabled():
        faulthandler.enable(all_threads=True)
