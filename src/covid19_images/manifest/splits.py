"""Patient-level, stable split assignment.

A split group is the connected component of (same source-namespaced patient) and (same
duplicate group): a duplicate in train and its original in test would leak, and so would
two images of one patient. Each group's split is a pure function of its key
(:func:`split_for`), so images added upstream never move an existing image.

The key of a new group is its smallest patient key. A group that already existed keeps
the key it had in the previous manifest even when a new member sorts first (a new
redistribution's copy of an old picture must not drag the old picture to another split).
Only when two existing groups become one must one side move; the merged group keeps the
previous key with the most members, and :func:`explain_split_moves` says which images moved
and why. A rebuild from scratch therefore matches an incremental one except after such
merges.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass

import pandas as pd

from covid19_images.core.unionfind import UnionFind

SPLIT_SALT = "covid19-images/v1"
DEFAULT_RATIOS: tuple[tuple[str, float], ...] = (("train", 0.8), ("val", 0.1), ("test", 0.1))
_DUP_PREFIX = "\uffffdup:"  # sorts after every patient key, so it is never chosen as a group key


def bucket(key: str, salt: str = SPLIT_SALT) -> float:
    """A uniform number in [0, 1) from a key: stable across machines and Python versions.

    Args:
        key: a split group key.
        salt: changes every bucket at once (a new salt is a new random split).
    """
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for(key: str, ratios: tuple[tuple[str, float], ...] = DEFAULT_RATIOS) -> str:
    """The split a group key falls in; cumulative ratios, so adding groups never moves one."""
    value, edge = bucket(key), 0.0
    for name, share in ratios:
        edge += share
        if value < edge:
            return name
    return ratios[-1][0]


def patient_keys(manifest: pd.DataFrame) -> list[str]:
    """Each row's namespaced patient; a row without one is its own patient (``source:file:path``)."""
    keys = []
    for patient, source, path in zip(manifest["patient_id"], manifest["source"], manifest["path"], strict=True):
        keys.append(str(patient) if patient else f"{source}:file:{path}")
    return keys


def components(manifest: pd.DataFrame) -> list[str]:
    """The stateless group key of every row: the smallest patient key in its connected component."""
    sets = UnionFind()
    keys = patient_keys(manifest)
    for patient, dup in zip(keys, manifest["dup_group"], strict=True):
        sets.find(patient)
        if dup:
            sets.union(patient, _DUP_PREFIX + str(dup))
    return [sets.find(p) for p in keys]


def assign_split_groups(manifest: pd.DataFrame, previous: pd.DataFrame | None = None) -> pd.Series:
    """The split group key of every row, keeping each existing group's previous key.

    Args:
        manifest: rows with ``image_id``, ``patient_id``, ``source``, ``path`` and ``dup_group``.
        previous: the last written manifest; a group holding its rows keeps the key most of
            them had (ties: the smallest), so existing images never change split unless
            two groups merge.
    """
    roots = components(manifest)
    if previous is None or previous.empty or "split_group" not in previous.columns:
        return pd.Series(roots, index=manifest.index, dtype=object)
    before = dict(zip(previous["image_id"], previous["split_group"], strict=True))
    old_keys: dict[str, Counter[str]] = defaultdict(Counter)
    for root, image_id in zip(roots, manifest["image_id"], strict=True):
        old = before.get(image_id)
        if old:
            old_keys[root][str(old)] += 1
    chosen: dict[str, str] = {}
    for root, counts in old_keys.items():
        # most members first, then the smallest key: deterministic when groups merge
        chosen[root] = min(counts, key=lambda key: (-counts[key], key))
    return pd.Series([chosen.get(root, root) for root in roots], index=manifest.index, dtype=object)


def assign_splits(
    manifest: pd.DataFrame, previous: pd.DataFrame | None = None, ratios: tuple[tuple[str, float], ...] = DEFAULT_RATIOS
) -> pd.DataFrame:
    """Fill ``split_group`` and ``split`` in place and return the frame.

    Args:
        manifest: the new manifest (see :func:`assign_split_groups` for the columns used).
        previous: the last written manifest, whose group keys are kept.
        ratios: ``(split, share)`` pairs in order, summing to 1.
    """
    if manifest.empty:
        return manifest
    manifest["split_group"] = assign_split_groups(manifest, previous)
    manifest["split"] = manifest["split_group"].map(lambda key: split_for(key, ratios))
    return manifest


def groups_across_splits(manifest: pd.DataFrame, split: pd.Series | None = None) -> pd.DataFrame:
    """Split groups whose rows sit in more than one split (must be empty), with their splits.

    Rows with no split (``""``, e.g. dropped by a scheme) are not counted as a split.
    """
    column = manifest["split"] if split is None else split
    frame = pd.DataFrame({"split_group": manifest["split_group"], "split": column.astype(str)})
    frame = frame[frame["split"] != ""]
    spread = frame.groupby("split_group")["split"].agg(lambda s: ",".join(sorted(set(s))))
    spread = spread[spread.str.contains(",")]
    return spread.rename("splits").reset_index()


@dataclass(frozen=True)
class SplitMove:
    """One existing image whose split changed between two manifests, and why."""

    image_id: str
    source: str
    path: str
    old_split: str
    new_split: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}/{self.path}: {self.old_split} → {self.new_split} ({self.reason})"


def explain_split_moves(old: pd.DataFrame | None, new: pd.DataFrame) -> list[SplitMove]:
    """Every image present in both manifests whose split changed, with the cause.

    Causes, checked in order: the image's patient id changed upstream; its split group
    merged with another existing group (a new duplicate or a shared patient joined them);
    its split group was re-keyed for another reason (e.g. the split salt or ratios changed).
    """
    if old is None or old.empty or new.empty:
        return []
    before = old.set_index("image_id")
    after = new.set_index("image_id")
    common = after.index.intersection(before.index)
    moved = [key for key in common if before.at[key, "split"] != after.at[key, "split"]]
    if not moved:
        return []
    old_groups_in_new: dict[str, set[str]] = defaultdict(set)
    for key in common:
        old_groups_in_new[str(after.at[key, "split_group"])].add(str(before.at[key, "split_group"]))
    moves = []
    for key in sorted(moved, key=lambda k: (after.at[k, "source"], after.at[k, "path"])):
        a, b = before.loc[key], after.loc[key]
        if a["patient_id"] != b["patient_id"]:
            reason = f"patient id changed upstream: {a['patient_id']} → {b['patient_id']}"
        elif len(old_groups_in_new[str(b["split_group"])]) > 1:
            others = sorted(old_groups_in_new[str(b["split_group"])] - {str(a["split_group"])})
            via = "a duplicate" if a["dup_group"] != b["dup_group"] else "a shared patient"
            reason = (
                f"its split group {a['split_group']} merged with {', '.join(others[:3])}"
                f"{' …' if len(others) > 3 else ''} through {via}; the merged group keeps {b['split_group']}"
            )
        else:
            reason = f"split group re-keyed {a['split_group']} → {b['split_group']}"
        moves.append(SplitMove(str(key), str(b["source"]), str(b["path"]), str(a["split"]), str(b["split"]), reason))
    return moves


def format_split_moves(moves: list[SplitMove], limit: int = 20) -> str:
    """Lines for a sync summary: every moved image (up to ``limit``) with its reason."""
    if not moves:
        return ""
    lines = [f"{len(moves)} existing image(s) changed split:"]
    lines += [f"  {move}" for move in moves[:limit]]
    if len(moves) > limit:
        lines.append(f"  … and {len(moves) - limit} more")
    return "\n".join(lines)
