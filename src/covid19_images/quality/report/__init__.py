"""``report``: what the collection holds and where it will mislead a model.

Three jobs, three modules: :mod:`.compute` counts and checks (plain JSON-ready data),
:mod:`.render` prints that data for a terminal, :mod:`.plots` draws it as PNG figures.
"""

from __future__ import annotations

from covid19_images.quality.report.compute import (
    AGE_GROUPS,
    DOMINANCE,
    IGNORED_LABELS,
    MIN_ROWS,
    age_group,
    build_report,
    cramers_v,
)
from covid19_images.quality.report.plots import write_plots
from covid19_images.quality.report.render import render_text

__all__ = [
    "AGE_GROUPS",
    "DOMINANCE",
    "IGNORED_LABELS",
    "MIN_ROWS",
    "age_group",
    "build_report",
    "cramers_v",
    "render_text",
    "write_plots",
]
