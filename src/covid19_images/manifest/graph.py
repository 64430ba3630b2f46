"""Connected components of an edge list, in numpy: the duplicate groups and the split groups.

A sync that changes one picture builds both graphs again over every row; ``scipy.sparse.csgraph``
would do it as fast, but importing ``scipy.sparse`` (with ``scipy.sparse.linalg`` and
``scipy.linalg`` behind it) costs about 0.25 s of that sync, more than both searches.
"""

from __future__ import annotations

import numpy as np


def component_labels(nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each node's component, named by its smallest node; edges ``a[i] - b[i]`` (undirected).

    Min-label hooking with pointer jumping: every label is a node of the same component and never
    larger than the node, each round hooks the larger root of every edge whose ends still differ
    onto the smaller one (so the number of roots falls), and ends when no edge joins two roots.
    """
    label = np.arange(nodes, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    while len(a):
        ends_a, ends_b = label[a], label[b]
        differ = ends_a != ends_b
        if not differ.any():
            break
        low = np.minimum(ends_a[differ], ends_b[differ])
        high = np.maximum(ends_a[differ], ends_b[differ])
        np.minimum.at(label, high, low)
        while True:  # pointer jumping: every node points at its root again
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
    return label
