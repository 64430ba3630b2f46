"""Rendering the ``report`` for a terminal (the JSON form is the computed dict itself)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from covid19_images.quality.report.annotations import render_annotations


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    cells = [header, *rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    return ["  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def _inline(counts: dict[str, int]) -> str:
    return ", ".join(f"{k or '-'} {v}" for k, v in counts.items()) or "-"


def render_text(report: dict[str, Any], *, limit: int = 20) -> str:
    """The report for a terminal: sections in the order a reviewer reads them.

    Args:
        report: the computed report (:func:`~covid19_images.quality.report.compute.build_report`).
        limit: longest listing per section (``--json`` has them all).
    """
    o = report["overall"]
    lines = [
        f"covid19-images report: {o['images']} images, {o['patients']} patients, {o['sources']} sources",
        f"  modality: {_inline(o['modality'])}",
        f"  label: {_inline(o['label'])}",
    ]
    if o.get("blank_images"):
        lines.append(f"  blank (no content) images: {o['blank_images']}")
    lines += ["", "Per source"]
    rows = [
        [
            name,
            str(s["images"]),
            str(s["patients"]),
            _inline(s["modality"]),
            _inline(s["label"]),
            _inline(s["view"]),
        ]
        for name, s in report["sources"].items()
    ]
    lines += _table(rows, ["source", "images", "patients", "modality", "labels", "views"])
    if "labels_views_modality" in report:
        lines += ["", "Labels x views x modality (all sources)"]
        frame = pd.DataFrame(report["labels_views_modality"])
        total = frame.groupby(["modality", "view", "label"])["images"].sum().reset_index()
        lines += _table(total.astype(str).to_numpy().tolist(), ["modality", "view", "label", "images"])
    if "duplicates" in report:
        d = report["duplicates"]
        lines += [
            "",
            "Duplicates",
            f"  {d['groups']} duplicate groups holding {d['rows_in_groups']} images "
            f"({d['extra_copies']} extra copies; loaders serve one image per group)",
            f"  pairs within a source: {d['pairs_within_source']} ({_inline(d['within_by_source'])})",
            f"  pairs across sources: {d['pairs_across_sources']} ({_inline(d['across_by_sources'])})",
        ]
        for example in d["examples"][:6]:
            lines.append(f"    {example['path_a']}  <->  {example['path_b']}  [{example['why']}]")
    if report.get("source_overlap"):
        lines += _overlap_lines(report["source_overlap"], limit)
    if report.get("augmented_copies"):
        lines.append(
            f"  augmented copies (not linkable to their originals, excluded by loaders by default): "
            f"{_inline(report['augmented_copies'])}"
        )
    if "licenses" in report:
        lic = report["licenses"]
        lines += ["", "Licences", f"  {_inline(lic['by_license'])}"]
        lines.append(f"  non-commercial only: {lic['non_commercial_images']} images")
        lines.append(f"  unknown licence: {lic['unknown_images']} images ({_inline(lic['unknown_by_source'])})")
        for path in lic["unknown_paths"][:limit]:
            lines.append(f"    {path}")
        if len(lic["unknown_paths"]) > limit:
            lines.append(f"    … and {len(lic['unknown_paths']) - limit} more (--json lists all)")
    if "confounding" in report:
        lines += ["", "Confounding (source x label per modality; unknown labels left out)"]
        for modality, c in report["confounding"].items():
            v = "n/a" if c["cramers_v"] is None else f"{c['cramers_v']:.2f}"
            lines.append(f"  {modality}: Cramér's V = {v}")
            table = pd.DataFrame(c["sources_by_label"]).T.fillna(0).astype(int)
            if len(table):
                lines += [
                    "  " + line
                    for line in _table(
                        [[s, *map(str, r)] for s, r in zip(table.index, table.to_numpy().tolist(), strict=True)],
                        ["source", *table.columns],
                    )
                ]
            if c["age_groups_by_label"]:
                lines.append(
                    "    age groups by label: "
                    + "; ".join(f"{label}: {_inline(groups)}" for label, groups in c["age_groups_by_label"].items())
                )
    if "splits" in report:
        s = report["splits"]
        lines += [
            "",
            "Splits",
            f"  sizes: {_inline(s['sizes'])}; {s['groups']} split groups ({s['multi_source_groups']} span sources)",
            f"  groups across splits: {s['groups_across_splits']} (must be 0)",
        ]
        for name, counts in s["by_label"].items():
            lines.append(f"    {name or '(none)'}: {_inline(counts)}")
    if "patient_ids" in report:
        missing = report["patient_ids"]["sources_without_patient_ids"]
        lines += ["", "Sources without patient ids"]
        if missing:
            for source, counts in missing.items():
                lines.append(f"  {source}: {counts['rows_without']} of {counts['rows']} images")
            lines.append(f"  note: {report['patient_ids']['note']}")
        else:
            lines.append("  none")
    lines += ["", "Privacy (DICOM headers with identifying values)"]
    if report["privacy"]:
        for finding in report["privacy"][:limit]:
            lines.append(f"  {finding.get('path', '')}: {finding.get('tags', '')}")
        if len(report["privacy"]) > limit:
            lines.append(f"  … and {len(report['privacy']) - limit} more")
    else:
        lines.append("  none found")
    if report.get("covidx"):
        lines += ["", "COVIDx images listed / held here / fetched / served by split_scheme='covidx:<version>'"]
        for item in report["covidx"]:
            lines += _covidx_lines(item)
    lines += render_annotations(report.get("annotations", {}))
    if report["warnings"]:
        lines += ["", "Warnings"] + [f"  {w}" for w in report["warnings"]]
    return "\n".join(lines)


def _overlap_lines(records: list[dict], limit: int) -> list[str]:
    """Pairs of sources sharing pictures (a duplicate group) or patients (a split group); the rest in one line."""
    shared = [r for r in records if r["shared_pictures"] or r["shared_patient_groups"]]
    rows = [
        [
            f"{r['source_a']} <-> {r['source_b']}",
            f"{r['shared_pictures']} ({r['picture_images_a']} / {r['picture_images_b']} images)",
            f"{r['shared_patient_groups']} ({r['patients_a']} / {r['patients_b']} patients)",
        ]
        for r in shared[:limit]
    ]
    lines = ["", "Overlap between sources (pictures: same duplicate group; patients: same split group)"]
    if rows:
        lines += _table(rows, ["sources", "shared pictures", "shared patient groups"])
    if len(shared) > limit:
        lines.append(f"  ... {len(shared) - limit} more overlapping pairs")
    lines.append(f"  {len(records) - len(shared)} of {len(records)} source pairs share no picture and no patient")
    return lines


def _covidx_lines(item: dict) -> list[str]:
    """One COVIDx version: totals, then per COVIDx source, naming some images no row matches."""
    if "error" in item:
        return [f"  cannot read the COVIDx label files: {item['error']}"]
    counts = ("listed", "held", "fetched", "served")
    lines = [f"  {item['version']}: " + ", ".join(f"{item.get(k, 0)} {k}" for k in counts)]
    for name, source in item.get("sources", {}).items():
        held_as = f" (as {source['held_as']})" if source.get("held_as") else " (no catalog source)"
        if source.get("held_as") and not source.get("in_manifest", True):
            held_as = f" (as {source['held_as']}: no rows in this manifest; add it to sources.yaml and sync)"
        lines.append(f"    {name}{held_as}: " + " / ".join(str(source[k]) for k in counts))
        if source.get("unmatched") and source.get("held_as"):
            more = source["unmatched_count"] - len(source["unmatched"])
            lines.append(
                f"      unmatched: {', '.join(source['unmatched'])}" + (f" and {more} more" if more > 0 else "")
            )
    return lines
