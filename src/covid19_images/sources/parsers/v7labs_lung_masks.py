"""Shim: the parser lives in :mod:`covid19_images.sources.catalog.v7labs_lung_masks` (catalog convention).

Kept only until the catalog registry loader lands; the lead drops it at merge.
"""

from covid19_images.sources.catalog.v7labs_lung_masks import parse

__all__ = ["parse"]
