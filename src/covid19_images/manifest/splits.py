"""Patient-level, stable split assignment.

A split group is the connected component of (same source-namespaced patient), (same
duplicate group) and (same patient in another source that shares the patient ids, e.g. the
MRNs of MIDRC-RICORD-1a, -1b and -1c: ``shared_patients``): a duplicate in train and its
original in test would leak, and so would two images of one patient. Each group's split is a pure function of its key
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
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SPLIT_SALT = "covid19-images/v1"
DEFAULT_RATIOS: tuple[tuple[str, float], ...] = (("train", 0.8), ("val", 0.1), ("test", 0.1))


def bucket(key: str, salt: str = SPLIT_SALT) -> float:
    """A uniform number in [0, 1) from a key: stable across machines and Python versions."""
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


def _patient_series(manifest: pd.DataFrame) -> pd.Series:
    """Each row's namespaced patient; a row without one is its own patient (``source:file:path``)."""
    patient = manifest["patient_id"].astype(str)
    own = manifest["source"].astype(str) + ":file:" + manifest["path"].astype(str)
    return patient.where(patient != "", own).reset_index(drop=True)


def shared_patient_keys(manifest: pd.DataFrame, shared_patients: Mapping[str, str]) -> pd.Series:
    """Each row's patient in the namespace its source shares (``ns:<raw id>``); "" where none is shared.

    ``shared_patients`` maps a source to the namespace of patient ids it shares with other sources
    (the catalog fact ``patient_namespace``). The manifest's ``patient_id`` is ``<source>:<raw id>``;
    a row without a patient id, or whose id is not in its source's namespace, shares nothing.
    Only the rows of sharing sources are looked at one by one (a few RICORD collections, not the
    whole manifest).
    """
    keys = np.full(len(manifest), "", dtype=object)
    sharing = [name for name, space in shared_patients.items() if space]
    rows = np.flatnonzero(manifest["source"].astype(str).isin(sharing).to_numpy()) if sharing else []
    if len(rows):
        sources = manifest["source"].astype(str).to_numpy(dtype=object)[rows]
        patients = manifest["patient_id"].astype(str).to_numpy(dtype=object)[rows]
        for at, source, patient in zip(rows.tolist(), sources.tolist(), patients.tolist(), strict=True):
            raw = patient[len(source) + 1 :] if patient.startswith(source + ":") else ""
            keys[at] = f"{shared_patients[source]}:{raw}" if raw else ""
    return pd.Series(keys, index=manifest.index, dtype=object)


def components(manifest: pd.DataFrame, shared_patients: Mapping[str, str] | None = None) -> list[str]:
    """The stateless group key of every row: the smallest patient key in its connected component.

    Patients, duplicate groups and shared patient ids are the nodes of one sparse graph; each row
    is an edge between its patient and its duplicate group, and one between its patient and its
    id in the namespace its source shares (:func:`shared_patient_keys`); ``scipy.sparse.csgraph``
    finds the components.
    """
    patient_codes, patients = pd.factorize(_patient_series(manifest))
    dup = manifest["dup_group"].astype(str).to_numpy()
    has_dup = dup != ""
    dup_codes, _dups = pd.factorize(dup[has_dup])
    shared = shared_patient_keys(manifest, shared_patients or {}).to_numpy()
    has_shared = shared != ""
    shared_codes, _shared = pd.factorize(shared[has_shared])
    nodes = len(patients) + len(_dups) + len(_shared)
    rows = np.concatenate([patient_codes[has_dup], patient_codes[has_shared]])
    columns = np.concatenate([dup_codes + len(patients), shared_codes + len(patients) + len(_dups)])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, columns)), shape=(nodes, nodes))
    _, label = connected_components(graph)  # weak components of the edge list: the groups
    patient_label = label[: len(patients)]
    smallest = pd.Series(patients).groupby(patient_label).transform("min")
    return smallest.to_numpy()[patient_codes].tolist()


def assign_split_groups(
    manifest: pd.DataFrame, previous: pd.DataFrame | None = None, shared_patients: Mapping[str, str] | None = None
) -> pd.Series:
    """The split group key of every row, keeping each existing group's previous key.

    A new source whose patients are already here (through a duplicate or a shared patient id)
    joins their existing group under its key: the images already assigned do not move.
    """
    roots = pd.Series(components(manifest, shared_patients), index=manifest.index, dtype=object)
    if previous is None or previous.empty or "split_group" not in previous.columns:
        return roots
    before = previous[["image_id", "split_group"]].astype(str).drop_duplicates("image_id")
    old = manifest["image_id"].astype(str).map(before.set_index("image_id")["split_group"])
    votes = pd.DataFrame({"root": roots, "old": old})
    votes = votes[votes["old"].notna() & (votes["old"] != "")]
    if votes.empty:
        return roots
    counts = votes.groupby(["root", "old"]).size().rename("n").reset_index()
    # most members first, then the smallest key: deterministic when groups merge
    counts = counts.sort_values(["n", "old"], ascending=[False, True])
    chosen = counts.drop_duplicates("root").set_index("root")["old"]
    return roots.map(chosen).where(roots.isin(chosen.index), roots).astype(object)


def assign_splits(
    manifest: pd.DataFrame,
    previous: pd.DataFrame | None = None,
    ratios: tuple[tuple[str, float], ...] = DEFAULT_RATIOS,
    shared_patients: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Fill ``split_group`` and ``split`` in place and return the frame (one hash per group, not per row)."""
    if manifest.empty:
        return manifest
    manifest["split_group"] = assign_split_groups(manifest, previous, shared_patients)
    keys = pd.unique(manifest["split_group"])
    manifest["split"] = manifest["split_group"].map({key: split_for(key, ratios) for key in keys})
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
    One merge on ``image_id``; only the moved rows (usually none) are looked at one by one.
    """
    if old is None or old.empty or new.empty:
        return []
    columns = ["image_id", "split", "split_group", "patient_id", "dup_group"]
    both = (
        old[columns]
        .astype(str)
        .merge(new[[*columns, "source", "path"]].astype(str), on="image_id", suffixes=("_a", "_b"))
    )
    moved = both[both["split_a"] != both["split_b"]]
    if moved.empty:
        return []
    pairs = both[["split_group_b", "split_group_a"]].drop_duplicates()
    old_groups_in_new = pairs.groupby("split_group_b")["split_group_a"].agg(set).to_dict()
    moves = []
    for row in moved.sort_values(["source", "path"], kind="mergesort").itertuples(index=False):
        if row.patient_id_a != row.patient_id_b:
            reason = f"patient id changed upstream: {row.patient_id_a} → {row.patient_id_b}"
        elif len(old_groups_in_new[row.split_group_b]) > 1:
            others = sorted(old_groups_in_new[row.split_group_b] - {row.split_group_a})
            via = "a duplicate" if row.dup_group_a != row.dup_group_b else "a shared patient"
            reason = (
                f"its split group {row.split_group_a} merged with {', '.join(others[:3])}"
                f"{' …' if len(others) > 3 else ''} through {via}; the merged group keeps {row.split_group_b}"
            )
        else:
            reason = f"split group re-keyed {row.split_group_a} → {row.split_group_b}"
        moves.append(SplitMove(row.image_id, row.source, row.path, row.split_a, row.split_b, reason))
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
