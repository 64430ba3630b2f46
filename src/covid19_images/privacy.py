"""Identifying DICOM header values that must never reach the manifest (stub; see issue 6)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def scan_identifying(root: Path, manifest: pd.DataFrame) -> list[dict[str, str]]:
    """DICOM rows whose headers still carry identifying values: ``[{path, tags}]``."""
    return []
