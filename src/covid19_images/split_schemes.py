"""Named split schemes a loader can serve (``split_scheme=``)."""

from __future__ import annotations

import pandas as pd


def resolve_split(manifest: pd.DataFrame, scheme: str = "default") -> pd.Series:
    """The split ("train"/"val"/"test"/"") of every row under ``scheme``.

    ``default``: the stable patient-group split. ``official``: the upstream's own split where
    the source has one.
    """
    if scheme == "default":
        return manifest["split"]
    if scheme == "official":
        return manifest["official_split"]
    raise ValueError(f"unknown split_scheme {scheme!r}")
