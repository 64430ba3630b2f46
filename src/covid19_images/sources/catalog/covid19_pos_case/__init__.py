"""coyotespike/covid-19-pos-case: one COVID-19 positive CT study, 7 series, extension-less DICOM.

Read by the shared :mod:`covid19_images.sources.layouts.dicom_study` layout (localizer,
axial and reformatted series are told apart there); the label comes from
``options: {label: covid-19}`` in this folder's ``source.yaml``.
"""

from covid19_images.sources.layouts.dicom_study import OPTIONS, parse

__all__ = ["OPTIONS", "parse"]
