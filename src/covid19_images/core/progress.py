"""When to draw progress bars: only where something redraws them.

tqdm redraws a bar with carriage returns; piped into a file or ``tee`` (``make demo | tee log``)
every redraw lands on one garbled line. Bars are drawn when asked for and stderr is a terminal
or a Jupyter kernel (whose widgets redraw in place); otherwise the command's own summary lines
say what happened.

A run that draws no bar does not import tqdm either (:func:`progress_bar`): ``tqdm.auto`` loads
asyncio and looks for a notebook, 35-40 ms of every sync that changed something, with
``--quiet`` or piped output, for bars nobody sees.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")


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


def progress_bar(iterable: Iterable[T], *, asked: bool = True, **options: Any) -> Iterable[T]:
    """``iterable`` in a ``tqdm.auto`` bar (``options`` go to tqdm) when :func:`show_progress` says a
    bar is drawn; otherwise ``iterable`` itself, and tqdm is not imported."""
    if not show_progress(asked):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **options)


__all__ = ["progress_bar", "show_progress"]
