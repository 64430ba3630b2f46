"""Disjoint sets whose name is their smallest member, for groups that must stay stable.

Duplicate groups (:mod:`covid19_images.manifest.duplicates`) and split groups
(:mod:`covid19_images.manifest.splits`) are both connected components named by their
smallest key: adding members to a group never renames it unless a smaller key joins, so
``dup_group`` and ``split_group`` values do not churn between syncs.
"""

from __future__ import annotations


class UnionFind:
    """Union-find over string keys (path compression; the smaller root wins a union)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        """The name (smallest member) of ``item``'s set; an unseen item becomes its own set."""
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        """Merge the sets of ``a`` and ``b``; the merged set is named by the smaller of the two names."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            keep, drop = (ra, rb) if ra < rb else (rb, ra)
            self.parent[drop] = keep
