"""Portal sources: datasets on Kaggle, TCIA, Zenodo, figshare or behind an agreement.

A portal source lives in the catalog like any other (``kind: portal`` in its ``source.yaml``)
and is pinned by a lock in the data root (:mod:`.lock`), the way a submodule is pinned by its
gitlink. ``fetch`` (:mod:`.fetch`) downloads what the lock lists through the portal's
documented API (:mod:`.portals`, :mod:`.http`), verifies every file before extracting any
(:mod:`.extract`) and swaps the finished folder into ``datasets/<name>`` (:mod:`.state`).
Every URL goes through git's ``url.<base>.insteadOf`` rules (:mod:`.mirror`).
"""
