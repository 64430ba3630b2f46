"""Shim: the parser lives in :mod:`covid19_images.sources.catalog.brixia_score` (catalog convention).

Kept only until the catalog registry loader lands; the lead drops it at merge.
"""

from covid19_images.sources.catalog.brixia_score import parse

__all__ = ["parse"]
