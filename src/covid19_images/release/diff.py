"""``covid19-images diff A B``: the datasheet difference between two releases.

What a reviewer needs to judge whether a model's numbers on version A and on version B
compare: whether the *test set* is the same images (and if not, how many left, joined or
changed label), how each split's size and label mix moved, which sources and pins changed,
and which confounding warnings of ``report`` appeared or went away. Both versions are read
from git (:mod:`covid19_images.manifest.versions`); nothing needs to be checked out.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from covid19_images.core.schema import LABELS, SPLITS
from covid19_images.export.croissant import confounding_findings
from covid19_images.manifest.versions import version_commit
from covid19_images.release.changelog import source_lines
from covid19_images.release.changes import collect_changes


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _split_rows(a: pd.DataFrame, b: pd.DataFrame) -> list[list[object]]:
    rows = []
    for split in SPLITS:
        ids_a = set(a.loc[a["split"] == split, "image_id"])
        ids_b = set(b.loc[b["split"] == split, "image_id"])
        rows.append([split, len(ids_a), len(ids_b), len(ids_a & ids_b), len(ids_a - ids_b), len(ids_b - ids_a)])
    return rows


def _label_rows(a: pd.DataFrame, b: pd.DataFrame) -> list[list[object]]:
    rows = []
    for split in SPLITS:
        ca = a.loc[a["split"] == split, "label"].value_counts().to_dict()
        cb = b.loc[b["split"] == split, "label"].value_counts().to_dict()
        rows.append([split, *(f"{ca.get(label, 0)} → {cb.get(label, 0)}" for label in LABELS)])
    return rows


def verdict(a: pd.DataFrame, b: pd.DataFrame) -> str:
    """One paragraph: do test-set numbers on the two versions compare?"""
    test_a = a[a["split"] == "test"].set_index("image_id")
    test_b = b[b["split"] == "test"].set_index("image_id")
    shared = test_a.index.intersection(test_b.index)
    relabelled = int((test_a.loc[shared, "label"] != test_b.loc[shared, "label"]).sum())
    left, joined = len(test_a.index.difference(test_b.index)), len(test_b.index.difference(test_a.index))
    if not left and not joined and not relabelled:
        return (
            f"**The test set is identical** ({len(shared)} images, same labels): test numbers on the two versions "
            "compare directly (training data may still differ; see below)."
        )
    return (
        f"**The test set changed**: {left} image(s) left it, {joined} joined it, {relabelled} of the "
        f"{len(shared)} shared ones changed label. Test numbers on the two versions do not compare directly; "
        f"compare models on the {len(shared) - relabelled} test images both versions hold with the same label "
        "(`image_id` and `label` of each version's manifest)."
    )


def version_diff(root: Path, old: str, new: str) -> str:
    """The Markdown datasheet diff from release ``old`` to release ``new``."""
    for version in (old, new):
        version_commit(root, version)  # UnknownVersion naming the releases there are
    changes = collect_changes(root, old, new)
    a = changes.before if changes.before is not None else changes.after.iloc[0:0]
    b = changes.after
    lines = [f"# Datasheet diff: {old} → {new}", "", f"{len(a)} → {len(b)} images.", "", verdict(a, b), ""]
    lines += ["## Splits", ""]
    lines += [*_table(["split", old, new, "in both", f"only {old}", f"only {new}"], _split_rows(a, b)), ""]
    lines += ["## Labels per split", ""]
    lines += [*_table(["split", *LABELS], _label_rows(a, b)), ""]
    warnings_a, warnings_b = set(confounding_findings(a)), set(confounding_findings(b))
    lines += ["## Confounding warnings (`covid19-images report`)", ""]
    lines += [f"- new in {new}: {w}" for w in sorted(warnings_b - warnings_a)]
    lines += [f"- gone since {old}: {w}" for w in sorted(warnings_a - warnings_b)]
    lines += [f"- in both: {w}" for w in sorted(warnings_a & warnings_b)]
    if not warnings_a | warnings_b:
        lines.append("- none in either version")
    lines += ["", "## Sources", ""]
    licences_a, licences_b = set(a["license"]), set(b["license"])
    if licences_a != licences_b:
        lines += [
            f"Licences added: {', '.join(sorted(licences_b - licences_a)) or 'none'}; "
            f"gone: {', '.join(sorted(licences_a - licences_b)) or 'none'}.",
            "",
        ]
    for delta in changes.sources.values():
        if delta.changed:
            lines += [f"### {delta.source}", "", *source_lines(delta), ""]
    unchanged = [d.source for d in changes.sources.values() if not d.changed]
    if unchanged:
        lines += [f"Unchanged: {', '.join(unchanged)}.", ""]
    return "\n".join(lines)
