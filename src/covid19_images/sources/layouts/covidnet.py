"""What the COVID-Net chest X-ray initiatives (Figure1, Actualmed; agchung) share.

Both publish ``metadata.csv`` with the same column family (``patientid``, ``finding``,
``view``, ``modality`` and a few clinical columns) next to ``images/``; they differ in how a
row names its image, so each catalog source keeps its own ``parse`` and uses these helpers.
"""

from __future__ import annotations

from covid19_images.core.vocab import harmonise_view
from covid19_images.sources.parsing import SourceContext, column

METADATA = "metadata.csv"
IMAGES = "images"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_UNKNOWN_VIEWS = {"", "?", "unknown"}
#: metadata column -> extra key, for the clinical columns the COVID-Net initiatives share.
CLINICAL_EXTRA = (
    ("offset", "offset_days"),
    ("survival", "survival"),
    ("temperature", "temperature"),
    ("pO2 saturation", "po2_saturation"),
    ("artifacts/distortion", "artifacts"),
)


def view_of(ctx: SourceContext, raw: str, path: str, where: str) -> str:
    """Harmonised view; a non-blank spelling the vocabulary lacks is reported (``path``, ``where``)."""
    view = harmonise_view(raw)
    if view == "unknown" and raw.strip().lower() not in _UNKNOWN_VIEWS:
        ctx.report(f"unmapped view {raw!r} -> unknown", path=path, row=where)
    return view


def clinical_extra(row: dict[str, str]) -> dict[str, str]:
    """The shared clinical columns of one row, as ``extra`` keys (blank and ``N/A`` left out)."""
    return {key: value for name, key in CLINICAL_EXTRA if (value := column(row, name)) and value.upper() != "N/A"}


def modality_of(raw: str) -> str:
    """``ct`` when the row says so, else ``xray`` (both initiatives are chest X-ray collections)."""
    return "ct" if raw.strip().lower() == "ct" else "xray"
