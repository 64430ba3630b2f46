"""Computing the ``report``: what the collection holds and where it will mislead a model.

Aggregated COVID-19 imaging sets fail in known ways (Roberts et al. 2021, DeGrave et al.
2021): the label is predictable from the source, every control comes from a paediatric set,
the same picture sits in two sources, patients straddle train and test. This report counts
images, patients, labels, views and modalities per source, and checks exactly those
failure modes so they are visible before anyone trains on the data:

* duplicates within and across sources (from ``dup_group``);
* licences, and the images whose licence nobody stated;
* a source x label table per modality with Cramér's V, and a WARNING when a label comes
  (>= 90 %) from one source or one age group, or a source supplies only one label;
* split groups that straddle splits (must be 0), and sources without patient ids;
* privacy findings from :func:`covid19_images.manifest.privacy.scan_identifying`.

The result is plain JSON-ready data; :mod:`.render` prints it and :mod:`.plots` draws it.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from covid19_images.core.licenses import is_unknown, license_terms
from covid19_images.core.schema import parse_extra
from covid19_images.manifest.duplicates import group_pairs, hamming
from covid19_images.manifest.splits import groups_across_splits
from covid19_images.quality.report.annotations import annotation_section
from covid19_images.quality.report.overlap import source_overlap

#: A label is confounded when this share of its rows comes from one source or one age group.
DOMINANCE = 0.9
#: Labels with fewer rows than this are too small to warn about.
MIN_ROWS = 5
IGNORED_LABELS = ("unknown",)
AGE_GROUPS = ((0, 18, "child (<18)"), (18, 65, "adult (18-64)"), (65, 200, "older (65+)"))


def age_group(age: str, extra: dict[str, Any]) -> str:
    """Age band from ``age``, else ``child (<18)`` for a source that says it is paediatric, else ``""``."""
    try:
        years = float(age)
    except (TypeError, ValueError):
        years = math.nan
    if not math.isnan(years):
        for low, high, name in AGE_GROUPS:
            if low <= years < high:
                return name
    if extra.get("paediatric") in (True, "true", "True", 1):
        return AGE_GROUPS[0][2]
    return ""


def cramers_v(table: pd.DataFrame) -> float | None:
    """Cramér's V of a contingency table (0 independent, 1 one determines the other); None if undefined."""
    from scipy.stats import chi2_contingency

    table = table.loc[table.sum(axis=1) > 0, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return None
    chi2 = chi2_contingency(table.to_numpy(), correction=False)[0]
    n = float(table.to_numpy().sum())
    return float(math.sqrt(chi2 / (n * (min(table.shape) - 1))))


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts().sort_index().items()}


def _no_patient_ids(frame: pd.DataFrame) -> pd.Series:
    flags = [str(p).startswith(f"{s}:file:") for p, s in zip(frame["patient_id"], frame["source"], strict=True)]
    return pd.Series(flags, index=frame.index, dtype=bool)


def _source_section(frame: pd.DataFrame) -> dict[str, Any]:
    without = _no_patient_ids(frame)
    return {
        "images": len(frame),
        "patients": int(frame["patient_id"].nunique()),
        "rows_without_patient_id": int(without.sum()),
        "modality": _counts(frame["modality"]),
        "label": _counts(frame["label"]),
        "view": _counts(frame["view"]),
        "license": _counts(frame["license"]),
        "split": _counts(frame["split"]),
        "official_split": _counts(frame["official_split"][frame["official_split"] != ""]),
    }


def _label_view_modality(frame: pd.DataFrame) -> list[dict[str, Any]]:
    grouped = frame.groupby(["source", "modality", "view", "label"]).size().reset_index(name="images")
    return grouped.to_dict("records")


def _duplicates(manifest: pd.DataFrame) -> dict[str, Any]:
    grouped = manifest[manifest["dup_group"].astype(str) != ""]
    pairs = group_pairs(manifest)
    cross = pairs[pairs["source_a"] != pairs["source_b"]] if len(pairs) else pairs
    within = pairs[pairs["source_a"] == pairs["source_b"]] if len(pairs) else pairs
    by_sources: Counter[str] = Counter()
    for a, b in zip(cross.get("source_a", []), cross.get("source_b", []), strict=True):
        by_sources[" <-> ".join(sorted((a, b)))] += 1
    facts = manifest.set_index("image_id")
    examples = []
    for frame in (cross, within):
        for record in frame.head(12 - len(examples)).to_dict("records"):
            record = _oriented(record)
            a, b = facts.loc[record["image_id_a"]], facts.loc[record["image_id_b"]]
            sizes = {f"size_{side}": f"{row['width']}x{row['height']}" for side, row in (("a", a), ("b", b))}
            examples.append({**record, **sizes, "why": _why(a, b)})
    return {
        "groups": int(grouped["dup_group"].nunique()),
        "rows_in_groups": len(grouped),
        "extra_copies": int(len(grouped) - grouped["dup_group"].nunique()),
        "pairs_within_source": len(within),
        "pairs_across_sources": len(cross),
        "within_by_source": _counts(within["source_a"]) if len(within) else {},
        "across_by_sources": dict(sorted(by_sources.items())),
        "examples": examples,
    }


def _oriented(record: dict[str, Any]) -> dict[str, Any]:
    """Sides ordered by (source, path), so a redistribution sits on the same side in every row."""
    if (record["source_a"], record["path_a"]) <= (record["source_b"], record["path_b"]):
        return record
    swapped = dict(record)
    for name in ("image_id", "source", "path"):
        swapped[f"{name}_a"], swapped[f"{name}_b"] = record[f"{name}_b"], record[f"{name}_a"]
    return swapped


def _why(a: pd.Series, b: pd.Series) -> str:
    if a["sha256"] and a["sha256"] == b["sha256"]:
        return "identical file"
    if a["pixel_sha256"] and a["pixel_sha256"] == b["pixel_sha256"]:
        return "identical pixels"
    if a["phash"] and len(a["phash"]) == len(b["phash"]):
        return f"near duplicate (phash distance {hamming(a['phash'], b['phash'])})"
    return "same duplicate group"


def _licences(manifest: pd.DataFrame) -> dict[str, Any]:
    unknown = manifest[manifest["license"].map(is_unknown)]
    terms = {lic: license_terms(lic) for lic in manifest["license"].unique()}
    non_commercial = manifest["license"].map(lambda lic: terms[lic]["commercial"] is False)
    return {
        "by_license": _counts(manifest["license"]),
        "by_source": {s: _counts(f["license"]) for s, f in manifest.groupby("source", sort=True)},
        "unknown_images": len(unknown),
        "unknown_by_source": _counts(unknown["source"]),
        "unknown_paths": sorted(unknown["path"]),
        "non_commercial_images": int(non_commercial.sum()),
    }


def _confounding(manifest: pd.DataFrame) -> dict[str, Any]:
    """Per modality: source x label table, Cramér's V, age groups per label, and warnings."""
    out: dict[str, Any] = {}
    extras = manifest["extra"].map(parse_extra)
    ages = pd.Series(
        [age_group(a, e) for a, e in zip(manifest["age"], extras, strict=True)], index=manifest.index, dtype=object
    )
    for modality, frame in manifest.groupby("modality", sort=True):
        known = frame[~frame["label"].isin(IGNORED_LABELS)]
        table = pd.crosstab(known["source"], known["label"]) if len(known) else pd.DataFrame()
        warnings: list[str] = []
        sources = sorted(set(known["source"]))
        labels = sorted(set(known["label"]))
        if len(sources) >= 2 and len(labels) >= 2:
            for label in labels:
                column = table[label]
                total = int(column.sum())
                top = str(column.idxmax())
                share = column.max() / total
                if total >= MIN_ROWS and share >= DOMINANCE:
                    warnings.append(
                        f"WARNING [{modality}] label {label!r}: {share:.0%} of its {total} images come from {top}; "
                        "a model can learn the source instead of the finding"
                    )
            for source in sources:
                supplied = table.loc[source]
                supplied = supplied[supplied > 0]
                if len(supplied) == 1 and int(supplied.iloc[0]) >= MIN_ROWS:
                    warnings.append(
                        f"WARNING [{modality}] source {source} supplies only label {supplied.index[0]!r} "
                        f"({int(supplied.iloc[0])} images): its look alone predicts the label"
                    )
        age_table = pd.crosstab(known["label"], ages[known.index]) if len(known) else pd.DataFrame()
        if "" in age_table.columns:
            age_table = age_table.drop(columns=[""])
        if len(labels) >= 2 and age_table.shape[1] >= 1:
            for label in age_table.index:
                row = age_table.loc[label]
                total = int(row.sum())
                if total < MIN_ROWS:
                    continue
                group, share = str(row.idxmax()), row.max() / total
                others = age_table.drop(index=label)
                other_total = int(others.to_numpy().sum())
                if other_total < MIN_ROWS:
                    continue  # no age known for the other labels: nothing to compare with
                other_share = others[group].sum() / other_total
                if share >= DOMINANCE and other_share < 0.5:
                    warnings.append(
                        f"WARNING [{modality}] label {label!r}: {share:.0%} of its {total} images with a known age "
                        f"are {group}, against {other_share:.0%} of the other labels: age confounds the label"
                    )
        out[str(modality)] = {
            "sources_by_label": {s: {str(k): int(v) for k, v in table.loc[s].items()} for s in table.index}
            if len(table)
            else {},
            "cramers_v": cramers_v(table) if len(table) else None,
            "age_groups_by_label": {
                str(label): {str(k): int(v) for k, v in age_table.loc[label].items() if v} for label in age_table.index
            }
            if len(age_table)
            else {},
            "warnings": warnings,
        }
    return out


def confounding(manifest: pd.DataFrame) -> dict[str, Any]:
    """The report's confounding section alone (``browse`` draws it as charts)."""
    return _confounding(manifest)


def _splits(manifest: pd.DataFrame) -> dict[str, Any]:
    straddling = groups_across_splits(manifest)
    return {
        "sizes": _counts(manifest["split"]),
        "by_label": {s: _counts(f["label"]) for s, f in manifest.groupby("split", sort=True)},
        "groups": int(manifest["split_group"].nunique()),
        "groups_across_splits": len(straddling),
        "groups_across_splits_examples": straddling.head(10).to_dict("records"),
        "multi_source_groups": int(manifest.groupby("split_group")["source"].nunique().gt(1).sum()),
    }


def _patient_ids(manifest: pd.DataFrame) -> dict[str, Any]:
    without = _no_patient_ids(manifest)
    per_source = manifest.assign(without=without).groupby("source")["without"].agg(["sum", "count"])
    missing = {
        str(source): {"rows_without": int(row["sum"]), "rows": int(row["count"])}
        for source, row in per_source.iterrows()
        if row["sum"] > 0
    }
    return {
        "sources_without_patient_ids": missing,
        "note": "rows without a patient id are grouped per file (patient_id 'source:file:<path>'): each is its own "
        "split group unless a duplicate links it to others, so images of one unknown patient can land in different "
        "splits",
    }


def _augmented(manifest: pd.DataFrame) -> dict[str, int]:
    flags = manifest["extra"].map(lambda text: parse_extra(text).get("augmented") in (True, "true", "True", 1))
    return _counts(manifest.loc[flags, "source"])


def confounding_warnings(manifest: pd.DataFrame) -> list[str]:
    """The confounding warnings alone (Croissant's ``rai:dataBiases``): a seventh of the whole report's cost."""
    if not len(manifest):
        return []
    return [str(w) for section in _confounding(manifest).values() for w in section["warnings"]]


def build_report(root: Path | None, manifest: pd.DataFrame, *, privacy: bool = True) -> dict[str, Any]:
    """Everything :func:`~covid19_images.quality.report.render.render_text` prints, as plain JSON-ready data.

    Args:
        root: the project root, for the DICOM privacy scan (None skips it).
        manifest: the manifest to describe.
        privacy: scan every DICOM file for identifying header values (slow on large sets).
    """
    report: dict[str, Any] = {
        "overall": {
            "images": len(manifest),
            "patients": int(manifest["patient_id"].nunique()) if len(manifest) else 0,
            "sources": int(manifest["source"].nunique()) if len(manifest) else 0,
            "modality": _counts(manifest["modality"]),
            "label": _counts(manifest["label"]),
            "blank_images": int((manifest["phash"].astype(str) == "").sum()) if len(manifest) else 0,
        },
        "sources": {str(s): _source_section(f) for s, f in manifest.groupby("source", sort=True)},
    }
    if len(manifest):
        report["labels_views_modality"] = _label_view_modality(manifest)
        report["duplicates"] = _duplicates(manifest)
        report["source_overlap"] = source_overlap(manifest)
        report["licenses"] = _licences(manifest)
        report["confounding"] = _confounding(manifest)
        report["splits"] = _splits(manifest)
        report["patient_ids"] = _patient_ids(manifest)
        report["augmented_copies"] = _augmented(manifest)
    report["warnings"] = [w for section in report.get("confounding", {}).values() for w in section["warnings"]]
    if report.get("splits", {}).get("groups_across_splits"):
        report["warnings"].append(
            f"ERROR {report['splits']['groups_across_splits']} split group(s) span more than one split"
        )
    report["privacy"] = _privacy(root, manifest) if privacy and root is not None else []
    report["annotations"] = annotation_section(root, manifest)
    report["covidx"] = _covidx(root, manifest) if root is not None and len(manifest) else []
    return report


def _covidx(root: Path, manifest: pd.DataFrame) -> list[dict[str, Any]]:
    """Per COVIDx version (COVID-Net's label sets, then the prebuilt CXR releases whose source is
    present): images listed, held, fetched and served by ``covidx:<v>``, per COVIDx source."""
    from covid19_images.core.schema import LABELS
    from covid19_images.manifest import covidx
    from covid19_images.manifest.split_schemes import COVIDX_SOURCE, release_sources

    served = frozenset(LABELS) - {"unknown"}
    folders: list[tuple[Path, str]] = []
    directory = Path(root) / "datasets" / COVIDX_SOURCE
    try:
        if directory.is_dir():
            folders = [(directory, v) for v in covidx.label_files_in(directory)]
        for release, holder in sorted(release_sources().items()):
            folder = Path(root) / "datasets" / holder
            if folder.is_dir() and any(folder.glob("*.txt")):
                folders.append((folder, release))
        return [covidx.held_and_served(manifest, folder, v, served, root) for folder, v in folders]
    except Exception as err:  # noqa: BLE001 - the report must still print if a label file is unreadable
        return [{"version": "?", "error": f"{type(err).__name__}: {err}"}]


def _privacy(root: Path, manifest: pd.DataFrame) -> list[dict[str, str]]:
    from covid19_images.manifest import privacy

    try:
        return list(privacy.scan_identifying(Path(root), manifest))
    except Exception as err:  # noqa: BLE001 - the report must still print if the scanner fails
        return [{"path": "", "tags": f"privacy scan failed: {type(err).__name__}: {err}"}]
