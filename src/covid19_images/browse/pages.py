"""What each page shows, as plain data for its template (the server and the static export share it).

Nothing here formats HTML: values go to Jinja2 templates with autoescaping on, so a file name or
a finding holding ``<script>`` is shown as text, never run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from covid19_images.browse.collection import FACETS, BadRequest, Collection, NotFound
from covid19_images.core.schema import LABELS, MODALITIES
from covid19_images.manifest.duplicates import hamming
from covid19_images.quality.report.compute import confounding

#: Brixia zones: A-C right lung top to bottom, D-F left lung (as the patient faces the viewer).
BRIXIA_ZONES = (("A", "D"), ("B", "E"), ("C", "F"))
PROBLEMS_PAGE = 200
EXAMPLES_PER_SOURCE = 24
SERVED_WHY = (
    "the loaders serve one image per duplicate group: the copy with the smallest image_id that their "
    "default filters keep (augmented copies are left out), so the choice is the same for every split"
)


def inside_source(row: pd.Series) -> str:
    """The row's path inside its source folder (``datasets/<source>/`` stripped)."""
    path = str(row["path"])
    prefix = f"datasets/{row['source']}/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def upstream_link(collection: Collection, source: str, commit: str = "", path: str = "") -> str:
    """The upstream page (at ``commit``, of ``path``) on GitHub; the homepage for other hosts; "" if none."""
    spec = collection.registry.get(source)
    if spec is None:
        return ""
    url = spec.url.removesuffix(".git")
    if not url.startswith("https://github.com/"):
        return spec.homepage if spec.homepage.startswith("https://") else ""
    if commit and path:
        return f"{url}/blob/{quote(commit, safe='')}/{quote(path)}"
    if commit:
        return f"{url}/tree/{quote(commit, safe='')}"
    return url


def _counts_table(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows (modality, label) with a count per split and a total."""
    table = frame.groupby(["modality", "label", "split"]).size()
    rows = []
    for (modality, label), part in table.groupby(level=[0, 1]):
        cells = {str(split): int(n) for (_, _, split), n in part.items()}
        rows.append({"modality": modality, "label": label, "splits": cells, "total": sum(cells.values())})
    order = {m: i for i, m in enumerate(MODALITIES)} | {lab: i for i, lab in enumerate(LABELS)}
    return sorted(rows, key=lambda r: (order.get(r["modality"], 99), order.get(r["label"], 99)))


def source_cards(collection: Collection) -> list[dict[str, Any]]:
    m = collection.manifest
    problems = collection.problems
    cards = []
    names = list(collection.registry) + sorted(set(m["source"]) - set(collection.registry))
    for name in names:
        frame = m[m["source"] == name]
        spec = collection.registry.get(name)
        commits = sorted(set(frame["source_commit"]) - {""})
        mine = problems[problems["source"] == name]
        cards.append(
            {
                "name": name,
                "spec": spec,
                "images": len(frame),
                "patients": int(frame["patient_id"].nunique()),
                "table": _counts_table(frame) if len(frame) else [],
                "licenses": frame["license"].replace("", "(none stated)").value_counts().to_dict(),
                "commits": [(c, upstream_link(collection, name, c)) for c in commits],
                "problems": mine["level"].value_counts().to_dict(),
                "upstream": upstream_link(collection, name),
            }
        )
    return cards


def source_examples(collection: Collection, name: str) -> list[int]:
    positions = np.flatnonzero((collection.manifest["source"] == name).to_numpy() & collection.served)
    return positions[:EXAMPLES_PER_SOURCE].tolist()


def card(collection: Collection, position: int) -> dict[str, Any]:
    """What a grid tile shows of one row."""
    v = collection.values
    source, path = v["source"][position], v["path"][position]
    return {
        "id": v["image_id"][position],
        "source": source,
        "label": v["label"][position],
        "view": v["view"][position],
        "modality": v["modality"][position],
        "split": v["split"][position],
        "name": path.rsplit("/", 1)[-1],
        "duplicate": v["dup_group"][position] != "",
    }


def grid(collection: Collection, filters: Mapping[str, str], number: int) -> dict[str, Any]:
    page = collection.page(filters, number)
    return {
        "filters": dict(filters),
        "facets": [(name, page.counts[name]) for name in FACETS],
        "cards": [card(collection, int(p)) for p in page.rows],
        "page": page,
    }


def _relation(a: pd.Series, b: pd.Series) -> tuple[str, int | None]:
    if a["sha256"] and a["sha256"] == b["sha256"]:
        return "identical bytes", 0
    if a["pixel_sha256"] and a["pixel_sha256"] == b["pixel_sha256"]:
        return "identical pixels", 0
    try:
        distance = hamming(str(a["phash"]), str(b["phash"]))
    except ValueError:
        return "joined through other copies", None
    return f"near duplicate ({distance} of 256 bits differ)", distance


def _annotation_view(collection: Collection, row: pd.Series) -> dict[str, Any]:
    records = collection.annotations_of(str(row["image_id"]))
    masks = [r for r in records if r["kind"] == "mask"]
    boxes = []
    for record in (r for r in records if r["kind"] == "box"):
        try:
            x0, y0, x1, y1 = (float(record[k]) for k in ("x0", "y0", "x1", "y1"))
        except ValueError:
            continue
        boxes.append({**record, "x": x0, "y": y0, "w": max(0.0, x1 - x0), "h": max(0.0, y1 - y0)})
    by_rater: dict[str, dict[str, str]] = {}
    for record in (r for r in records if r["kind"] == "severity"):
        by_rater.setdefault(record["rater"], {})[record["name"]] = record["value"]
    zones = {}
    for rater, values in sorted(by_rater.items()):
        grid_rows = [[values.get(f"brixia_{z}", "") for z in pair] for pair in BRIXIA_ZONES]
        others = {k: v for k, v in values.items() if not k.startswith("brixia_") or k == "brixia_global"}
        zones[rater] = {"grid": grid_rows if any(any(r) for r in grid_rows) else [], "others": others}
    findings = [r for r in records if r["kind"] == "finding"]
    return {"masks": masks, "boxes": boxes, "severity": zones, "findings": findings, "count": len(records)}


def image(collection: Collection, image_id: str) -> dict[str, Any]:
    row = collection.row(image_id)
    position = collection.rows[image_id]
    m = collection.manifest
    group = []
    if row["dup_group"]:
        for other_position in np.flatnonzero((m["dup_group"] == row["dup_group"]).to_numpy()).tolist():
            other = m.iloc[other_position]
            relation, distance = ("this image", 0) if other_position == position else _relation(row, other)
            group.append(
                {
                    "card": card(collection, other_position),
                    "relation": relation,
                    "distance": distance,
                    "served": bool(collection.served[other_position]),
                    "path": inside_source(other),
                }
            )
    patient = []
    if row["patient_id"]:
        same = np.flatnonzero((m["patient_id"] == row["patient_id"]).to_numpy()).tolist()
        patient = [card(collection, p) for p in same if p != position][:48]
    problems = collection.problems
    inside = inside_source(row)
    mine = problems[(problems["source"] == row["source"]) & (problems["path"] == inside)].to_dict("records")
    fields = [(c, row[c]) for c in m.columns if c != "extra"]
    return {
        "row": row,
        "card": card(collection, position),
        "fields": fields,
        "extra": collection.extras[position],
        "inside": inside,
        "upstream": upstream_link(collection, str(row["source"]), str(row["source_commit"]), inside),
        "group": group,
        "served": bool(collection.served[position]),
        "served_why": SERVED_WHY,
        "annotations": _annotation_view(collection, row),
        "problems": mine,
        "patient": patient,
        "width": int(row["width"]) if str(row["width"]).isdigit() else 0,
        "height": int(row["height"]) if str(row["height"]).isdigit() else 0,
    }


def _bars(table: pd.DataFrame, facet: str, modality: str) -> list[dict[str, Any]]:
    """One bar per row of ``table`` (row value x label counts), each segment a grid filter."""
    bars = []
    for value, counts in table.iterrows():
        total = int(counts.sum())
        segments = [
            {
                "label": str(label),
                "count": int(n),
                "share": n / total if total else 0,
                "filters": {"modality": modality, facet: str(value), "label": str(label)},
            }
            for label, n in counts.items()
            if n
        ]
        bars.append({"value": str(value), "total": total, "segments": segments})
    return bars


def bias(collection: Collection) -> dict[str, Any]:
    m = collection.manifest
    found = confounding(m) if len(m) else {}
    ages = pd.Series(collection.facets["age"].values, dtype=object).to_numpy()[collection.facets["age"].codes]
    charts = []
    for modality, section in found.items():
        frame = m[(m["modality"] == modality) & (m["label"] != "unknown")]
        if frame.empty:
            continue
        by_age = pd.crosstab(ages[frame.index], frame["label"]).rename_axis(index="age")
        by_source = pd.crosstab(frame["source"], frame["label"])
        charts.append(
            {
                "modality": modality,
                "cramers_v": section.get("cramers_v"),
                "warnings": section.get("warnings", []),
                "charts": [
                    ("source", "source x label", _bars(by_source, "source", modality)),
                    ("age", "age x label", _bars(by_age, "age", modality)),
                    ("view", "view x label", _bars(pd.crosstab(frame["view"], frame["label"]), "view", modality)),
                ],
            }
        )
    return {"modalities": charts, "labels": [lab for lab in LABELS if lab != "unknown"]}


PROBLEM_FILTERS = ("source", "level")


def problems(
    collection: Collection, query: Mapping[str, str], number: int, page_size: int | None = PROBLEMS_PAGE
) -> dict[str, Any]:
    """One page of the problems table (``page_size=None``: all of it, for the static catalog)."""
    frame = collection.problems
    size = page_size or max(1, len(frame))
    filters = {}
    for key, value in query.items():
        if key == "page":
            continue
        if key not in PROBLEM_FILTERS:
            raise BadRequest("unknown filter")
        if value and value not in set(frame[key]):
            raise BadRequest(f"no such value for filter {key}")
        if value:
            filters[key] = value
    for key, value in filters.items():
        frame = frame[frame[key] == value]
    pages = max(1, -(-len(frame) // size))
    if not 1 <= number <= pages:
        raise NotFound(f"page {number} does not exist ({pages} pages)")
    shown = frame.iloc[(number - 1) * size : number * size]
    by_file = {}
    m = collection.manifest
    keys = collection.remember(
        "image-by-file",
        lambda: pd.Series(m["image_id"].to_numpy(), index=pd.MultiIndex.from_arrays([m["source"], m["path"]])),
    )
    for source, path in zip(shown["source"], shown["path"], strict=True):
        image_id = keys.get((source, f"datasets/{source}/{path}"))
        if isinstance(image_id, str):
            by_file[(source, path)] = image_id
    commits = collection.remember("commits", lambda: m.groupby("source")["source_commit"].first().to_dict())
    upstream = {
        (source, path): upstream_link(collection, source, str(commits.get(source, "")), path)
        for source, path in zip(shown["source"], shown["path"], strict=True)
    }
    return {
        "rows": shown.to_dict("records"),
        "images": by_file,
        "upstream": upstream,
        "total": len(frame),
        "page": number,
        "pages": pages,
        "filters": filters,
        "choices": {k: sorted(set(collection.problems[k])) for k in PROBLEM_FILTERS},
    }
