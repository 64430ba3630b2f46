"""AH Paris COVID-19 CT studies (coyotespike/AHP-covid19-ctscans), via Arterys.

DICOM studies, ``*.dcm`` under Anonymized/ and Thorax/ mixed with extension-less files:
read by the shared :mod:`covid19_images.sources.layouts.dicom_study` layout, which sniffs
bytes rather than names. Every study is COVID-19 positive; the label comes from
``options: {label: covid-19}`` in this folder's ``source.yaml``.
"""

from covid19_images.sources.layouts.dicom_study import OPTIONS, parse

__all__ = ["OPTIONS", "parse"]
