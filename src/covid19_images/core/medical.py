"""What these images can and cannot tell you: the warning every loader shows once per process.

It lives in ``core`` because the loaders, the exports' datasheet and the demo all print it.
"""

from __future__ import annotations

import os
import sys
import warnings

MEDICAL_WARNING = (
    "covid19-images: research use only. A positive scan can suggest COVID-19; a negative scan means nothing "
    "(a normal image does not rule out COVID-19). Public COVID-19 image sets are known to contain duplicates "
    "and source-label confounding: check `covid19-images report` before trusting a result."
)


class MedicalWarning(UserWarning):
    """Shown once per process on first use: what these images can and cannot tell you."""


_warned = False


def warn_medical() -> None:
    """Issue :data:`MEDICAL_WARNING` once per process, pointed at the user's line."""
    global _warned
    if _warned:
        return
    _warned = True
    # point the warning at the user's line, not at whichever wrapper of ours called us
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(MEDICAL_WARNING, MedicalWarning, stacklevel=level)
