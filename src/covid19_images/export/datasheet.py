"""DATASHEET.md: a datasheet for the exported dataset (after Gebru et al., "Datasheets for Datasets").

Built only from the exported rows, the registry and ``report``'s checks, in a fixed order,
so it is byte-deterministic like the rest of the export: sources with the commits the
files come from and their citations, counts per split x label x source, licences with
the attribution list, the confounding warnings ``covid19-images report`` gives for
exactly these rows, and the medical warning.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from covid19_images.core.licenses import is_unknown, license_terms
from covid19_images.core.schema import MANIFEST_COLUMNS, SPLITS

#: licences whose terms ask nothing of a re-user (everything else needs attribution or a question)
NO_ATTRIBUTION = ("CC0-1.0", "public-domain", "Unlicense")


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[value]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def warnings_for(rows: pd.DataFrame, root: Path) -> list[str]:
    """The warnings ``covid19-images report`` prints for exactly these rows (no privacy scan)."""
    from covid19_images.quality.report import build_report

    return list(build_report(root, rows[list(MANIFEST_COLUMNS)].copy(), privacy=False)["warnings"])


def render(items: pd.DataFrame, export_paths: list[str], classes: tuple[str, ...], root: Path, meta: dict) -> str:
    """The datasheet's Markdown. ``meta``: format, modality, split_scheme, image_size, filters."""
    from covid19_images import MEDICAL_WARNING
    from covid19_images.sources.registry import load_registry

    registry = load_registry(root)
    rows = items.assign(export_path=export_paths)
    size = meta.get("image_size")
    shape = f"squashed to {size[0]}x{size[1]} (height x width), PNG" if size else "original files"
    out = [
        f"# Datasheet: covid19-images {meta['modality']} export ({meta['format']})",
        "",
        f"> {MEDICAL_WARNING}",
        "",
        "## Motivation and composition",
        "",
        f"{len(rows)} images of public COVID-19 lung-imaging datasets, {rows['source'].nunique()} source(s), "
        f"classes {', '.join(classes)} (label index = position). Split scheme `{meta['split_scheme']}`: "
        "patients (split groups) never straddle splits; duplicate images are kept once; rows labelled "
        f"`unknown` are left out. Images: {shape}. "
        f"Filters: {', '.join(f'{k}={v}' for k, v in meta['filters'].items() if v) or 'none'}.",
        "",
        "### Images per split x label x source",
        "",
    ]
    table = rows.groupby(["split", "label", "source"], sort=False).size()
    ordered = sorted(table.items(), key=lambda kv: (SPLITS.index(kv[0][0]), kv[0][1], kv[0][2]))
    out += _table(["split", "label", "source", "images"], [[*key, int(n)] for key, n in ordered])
    out += ["", "## Sources", ""]
    source_rows = []
    for source, frame in rows.groupby("source", sort=True):
        spec = registry.get(str(source))
        commits = ", ".join(sorted(set(frame["source_commit"].astype(str)) - {""})) or "?"
        source_rows.append([source, commits, spec.url if spec else "?", spec.license if spec else "?", len(frame)])
    out += _table(["source", "commit", "upstream", "licence (as stated)", "images"], source_rows)
    out += ["", "### Citations", ""]
    for source in sorted(set(rows["source"])):
        spec = registry.get(str(source))
        citation = (spec.citation if spec else "").strip() or "(no citation given by the registry)"
        out.append(f"- **{source}**: {citation}")
    out += ["", "## Licences", ""]
    licence_rows = []
    for licence, frame in rows.groupby("license", sort=True):
        terms = license_terms(str(licence))
        licence_rows.append(
            [
                licence or "unknown",
                len(frame),
                _yes(terms["commercial"]),
                _yes(terms["derivatives"]),
                _yes(terms["share_alike"]),
            ]
        )
    out += _table(["licence", "images", "commercial use", "derivatives", "share-alike"], licence_rows)
    unknown = rows[rows["license"].map(is_unknown)]
    if len(unknown):
        out += ["", f"{len(unknown)} image(s) have no stated licence: ask the source before redistributing them."]
    out += [
        "",
        "### Attribution list",
        "",
        "Every image whose licence asks for attribution (or states none), with the file it came from:",
        "",
    ]
    attribute = rows[~rows["license"].isin(NO_ATTRIBUTION)]
    out += _table(
        ["export path", "source", "original path", "licence"],
        [
            [p, s, o, lic or "unknown"]
            for p, s, o, lic in zip(
                attribute["export_path"], attribute["source"], attribute["path"], attribute["license"], strict=True
            )
        ],
    )
    from covid19_images.export.schema import schema_markdown

    section = schema_markdown(str(meta["format"]))
    if section:
        out += ["", *section[:-1]]
    warnings = warnings_for(rows, root)
    out += ["", "## Known biases: confounding warnings of `covid19-images report` for these rows", ""]
    out += [f"- {w}" for w in warnings] or ["- none found by the report's checks (which cannot see every bias)"]
    out += [
        "",
        "## Uses",
        "",
        "Research on methods only. Not for diagnosis. Public COVID-19 image sets mix hospitals, devices, ages "
        "and sources per label; a model can score well by recognising those instead of disease.",
        "",
        "## Medical warning",
        "",
        MEDICAL_WARNING,
        "",
    ]
    return "\n".join(out)
