"""One DICOM header, read without its pixels: what the portal sources' parsers need from it.

RSNA, RICORD-1c and COVID-19-NY-SBU ship DICOM files whose view, sex and age live only in the
header. Parsers read the few tags they use (``stop_before_pixels``, ``specific_tags``), so a
header costs a few kilobytes whatever the file claims; a file pydicom cannot read is reported
with its path and skipped, never fatal.
"""

from __future__ import annotations

from typing import Any

from covid19_images.sources.parsing import SourceContext

#: Tags every portal parser may want; names, dates and institutions are never loaded.
HEADER_TAGS = (
    "Modality",
    "ViewPosition",
    "PatientSex",
    "PatientAge",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "Rows",
    "Columns",
)


def text(ds: Any, keyword: str) -> str:
    """A header value as stripped text (``""`` when absent); multi-values joined with ``\\``."""
    value = ds.get(keyword) if ds is not None else None
    if value is None:
        return ""
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def read_header(ctx: SourceContext, relative: str, tags: tuple[str, ...] = HEADER_TAGS) -> Any | None:
    """The header of ``relative`` (a pydicom Dataset without pixels), or None after reporting why not."""
    import pydicom

    try:
        with open(ctx.directory / relative, "rb") as handle:
            head = handle.read(132)
        ds = pydicom.dcmread(
            ctx.directory / relative, stop_before_pixels=True, specific_tags=list(tags), force=head[128:] != b"DICM"
        )
        if not any(keyword in ds for keyword in tags):
            raise ValueError(f"none of the elements {', '.join(tags)} found")
        return ds
    except Exception as err:  # noqa: BLE001 - pydicom raises anything on a damaged file; report it, go on
        ctx.report(f"cannot read the DICOM header: {type(err).__name__}: {err}; skipped", path=relative)
        return None
