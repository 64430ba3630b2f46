"""MIDRC-RICORD-1b (TCIA): chest CT studies as DICOM, read by the shared TCIA CT layout.

Subjects are ``MIDRC-RICORD-1B-<MRN>`` folders (``options: {subject_prefix: ...}`` in this folder's
``source.yaml``); the series, their roles and slice order come from the DICOM headers
(:mod:`covid19_images.sources.layouts.tcia_ct`). No file of this collection is public outside TCIA
(``../shared/upstream-portal/INDEX.md``: clinical spreadsheets, MD.ai export and manifests not
found), so the parser is written against TCIA's documented landing layouts and RICORD-1c's real
folder names.
"""

from covid19_images.sources.layouts.tcia_ct import OPTIONS, parse

__all__ = ["OPTIONS", "parse"]
