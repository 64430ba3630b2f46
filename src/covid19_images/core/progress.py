"""When to draw progress bars: only where something redraws them.

tqdm redraws a bar with carriage returns; piped into a file or ``tee`` (``make demo | tee log``)
every redraw lands on one garbled line. Bars are drawn when asked for and stderr is a terminal
or a Jupyter kernel (whose widgets redraw in place); otherwise the command's own summary lines
say what happened.
"""

from __future__ import annotations

import sys


def show_progress(asked: bool = True) -> bool:
    """True when progress bars were asked for and stderr redraws them (a terminal, a notebook)."""
    if not asked:
        return False
    if "ipykernel" in sys.modules:
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


__all__ = ["show_progress"]
