"""Releases: named, citable, loadable versions of the collection (``release``, ``diff``, changelog, CFF, Croissant)."""
