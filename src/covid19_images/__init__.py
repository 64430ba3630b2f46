"""covid19-images: public COVID-19 lung-imaging datasets as one leak-free, citable collection.

Importing this package imports no deep-learning framework; each loader imports its
framework only when asked for it.

A positive scan can suggest COVID-19; a negative scan means nothing. Research use only.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

MEDICAL_WARNING = (
    "covid19-images: research use only. A positive scan can suggest COVID-19; a negative scan means nothing "
    "(a normal image does not rule out COVID-19). Public COVID-19 image sets are known to contain duplicates "
    "and source-label confounding: check `covid19-images report` before trusting a result."
)


def load_manifest(root: Any = None, **kwargs: Any):
    """The unified manifest as a pandas DataFrame (see manifests/README.md for the columns)."""
    from covid19_images.loaders import load_manifest as _load_manifest

    return _load_manifest(root=root, **kwargs)


def load_covid_xray(framework: str = "torch", **kwargs: Any):
    """Chest X-rays as a native dataset of ``framework`` ("torch", "tf" or "fastai")."""
    from covid19_images.loaders import load

    return load("xray", framework, **kwargs)


def load_covid_ct(framework: str = "torch", **kwargs: Any):
    """CT slices (DICOM instances, NIfTI volumes expanded to slices, 2-D CT images).

    ``volumes=True`` serves one 3-D item per DICOM series or NIfTI volume instead (see
    ``covid19_images.loaders.volumes``).
    """
    from covid19_images.loaders import load

    return load("ct", framework, **kwargs)


def load_covid_ultrasound(framework: str = "torch", **kwargs: Any):
    """Lung ultrasound images and video frames."""
    from covid19_images.loaders import load

    return load("ultrasound", framework, **kwargs)


__all__ = [
    "MEDICAL_WARNING",
    "__version__",
    "load_covid_ct",
    "load_covid_ultrasound",
    "load_covid_xray",
    "load_manifest",
]
