"""Parsers and parsing helpers shared by several catalog sources.

A module here with a ``parse(ctx)`` (``dicom_study``) can be named by ``parser:`` in a
root's ``sources.yaml`` for a local source laid out the same way; the catalog sources that
use it re-export it from their own ``__init__.py``. Helper modules without ``parse``
(``covidnet``) hold the logic two sources share, so it is written once.
"""
