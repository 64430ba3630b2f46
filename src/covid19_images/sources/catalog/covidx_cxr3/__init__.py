"""COVIDx CXR-3: the earlier prebuilt release under the same Kaggle slug, pinned at its own version.

Same layout and label-file format as CXR-4 (``train.txt`` and ``test.txt`` beside ``train/`` and
``test/``), so the parser is CXR-4's; only the pinned version and ``covidx_release`` differ.
"""

from covid19_images.sources.catalog.covidx_cxr4 import parse

__all__ = ["parse"]
