"""The ``report`` section on annotations: what is annotated, and how much raters agree.

* Coverage: per image source and label, how many images carry an annotation of each kind
  (a mask, a box, a severity score, a finding), from ``manifests/annotations.csv``.
* Brixia senior vs junior radiologist on the images held: per zone (0-3) and the global
  score (0-18), the number of images, the mean absolute difference and Cohen's kappa with
  quadratic weights (scikit-learn's ``cohen_kappa_score``; the usual statistic for ordinal
  scores, as BS-Net reports it). Copies of one picture count once (one per duplicate group).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from covid19_images.core.annotation import KINDS

BRIXIA_SOURCE = "brixia-score"
BRIXIA_NAMES = (*(f"brixia_{z}" for z in "ABCDEF"), "brixia_global")


def _coverage(manifest: pd.DataFrame, annotations: pd.DataFrame) -> list[dict[str, Any]]:
    kinds = annotations.groupby("image_id")["kind"].agg(lambda k: set(k)).to_dict()
    rows = []
    for (source, label), frame in manifest.groupby(["source", "label"], sort=True):
        held = [kinds.get(i, set()) for i in frame["image_id"]]
        row: dict[str, Any] = {"source": str(source), "label": str(label), "images": len(frame)}
        row["annotated"] = sum(1 for k in held if k)
        for kind in KINDS:
            row[kind] = sum(1 for k in held if kind in k)
        if row["annotated"]:
            rows.append(row)
    return rows


def _agreement(manifest: pd.DataFrame, annotations: pd.DataFrame) -> list[dict[str, Any]]:
    scores = annotations[(annotations["source"] == BRIXIA_SOURCE) & (annotations["kind"] == "severity")]
    if scores.empty:
        return []
    groups = dict(zip(manifest["image_id"], manifest["dup_group"], strict=True))
    scores = scores.assign(picture=[groups.get(i) or i for i in scores["image_id"]])
    table = scores.pivot_table(index=["picture", "name"], columns="rater", values="value", aggfunc="first")
    if not {"senior", "junior"} <= set(table.columns):
        return []
    try:
        from sklearn.metrics import cohen_kappa_score
    except ImportError:  # scikit-learn is optional: the "stats" extra
        cohen_kappa_score = None
    found = []
    for name in BRIXIA_NAMES:
        if name not in table.index.get_level_values("name"):
            continue
        pair = table.xs(name, level="name")[["senior", "junior"]].dropna().astype(int)
        if pair.empty:
            continue
        top = 18 if name == "brixia_global" else 3
        kappa = None
        if cohen_kappa_score is not None and pair.nunique().max() > 1:
            kappa = float(
                cohen_kappa_score(pair["senior"], pair["junior"], weights="quadratic", labels=list(range(top + 1)))
            )
        found.append(
            {
                "score": name,
                "images": len(pair),
                "mean_abs_diff": float((pair["senior"] - pair["junior"]).abs().mean()),
                "exact_agreement": float((pair["senior"] == pair["junior"]).mean()),
                "weighted_kappa": kappa,
            }
        )
    return found


def annotation_section(root: Path | None, manifest: pd.DataFrame) -> dict[str, Any]:
    """Coverage and agreement as JSON-ready data; empty when there is no annotations file."""
    from covid19_images.manifest.annotations import read_annotations

    annotations = read_annotations(Path(root)) if root is not None else None
    if annotations is None or annotations.empty:
        return {"coverage": [], "brixia_agreement": [], "rows": 0}
    annotations = annotations[annotations["image_id"].isin(set(manifest["image_id"]))]
    return {
        "rows": len(annotations),
        "by_source": {str(k): int(v) for k, v in annotations.groupby("source").size().items()},
        "coverage": _coverage(manifest, annotations),
        "brixia_agreement": _agreement(manifest, annotations),
    }


def render_annotations(section: dict[str, Any]) -> list[str]:
    """The text lines of the section, for ``report``."""
    lines = ["", "Annotations (manifests/annotations.csv)"]
    if not section.get("rows"):
        return [*lines, "  none (no annotations.csv, or none on the images held)"]
    lines.append("  rows by annotation source: " + ", ".join(f"{k} {v}" for k, v in section["by_source"].items()))
    lines.append("  coverage: image source / label: annotated of images (mask, box, severity, finding)")
    for row in section["coverage"]:
        kinds = ", ".join(f"{kind} {row[kind]}" for kind in KINDS if row[kind])
        lines.append(f"    {row['source']} / {row['label']}: {row['annotated']} of {row['images']} ({kinds})")
    agreement = section.get("brixia_agreement") or []
    if agreement:
        lines.append("  Brixia senior vs junior radiologist (images held, one per duplicate group)")
        for row in agreement:
            kappa = "n/a" if row["weighted_kappa"] is None else f"{row['weighted_kappa']:.2f}"
            lines.append(
                f"    {row['score']}: n={row['images']}, mean |S-J| = {row['mean_abs_diff']:.2f}, "
                f"exact {row['exact_agreement']:.0%}, quadratic-weighted kappa {kappa}"
            )
    return lines
