"""The ``covid19-images`` command line (click): one group, its commands in a module per stage.

``_group`` holds the group and what every command shares; ``data`` (sync, fetch, status,
new-source), ``quality`` (report, verify), ``release`` (release, diff) and ``publish`` (export,
browse) each add their commands to it when imported here.
"""

from __future__ import annotations

from covid19_images.cli import data, publish, quality, release  # noqa: F401  (each registers its commands)
from covid19_images.cli._group import UserError, main, root_option

__all__ = ["UserError", "main", "root_option"]
