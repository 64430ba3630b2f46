"""COVIDx split definitions (lindawangg/COVID-Net ``labels/``) applied to the images we hold.

COVIDx is the train/test split most COVID-19 X-ray papers report on. Its label files name
images by file name only, drawn from many sources (ieee8023 "cohen", Figure1 "fig1",
Actualmed "actmed", SIRM, RSNA, RICORD, BIMCV, Stony Brook), so the split is recovered by
matching base names against the manifest rows of the three sources we hold; entries of the
other sources stay unresolved and are counted per source.

File format (no header, space-separated): ``patientid filename label`` for v1
(``*_COVIDx.txt``), ``patientid filename label source`` from v9A on. Patient ids can
themselves contain spaces (``COVID 70``), so lines are read from the right: the label and
the source come from small known vocabularies and the file name is the token before the
label; whatever remains is the patient id. ``rnsa`` is a typo of ``rsna`` in v9.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

import pandas as pd

from covid19_images.sources.catalog.covidx_splits import (  # noqa: F401 - re-exported for callers of the scheme
    _COVIDX_NAME,
    HELD_SOURCES,
    IMAGE_SUFFIXES,
    KNOWN_SOURCES,
    LABEL_AGREES,
    LABELS_DIR,
    SOURCE_ALIASES,
    SPLIT_NAMES,
    UNSPECIFIED,
    CovidxEntry,
    CovidxFile,
    entries_per_version,
    find_labels_dir,
    label_files_in,
    parse_line,
    read_label_file,
    read_version,
    split_and_version,
)


def _rows_by_name(manifest: pd.DataFrame) -> dict[tuple[str, str], list[int]]:
    """``(registry source, base name) -> manifest row positions`` for the held sources."""
    held = set(HELD_SOURCES.values())
    found: dict[tuple[str, str], list[int]] = defaultdict(list)
    for position, (source, path) in enumerate(zip(manifest["source"], manifest["path"], strict=True)):
        if source in held:
            found[(source, PurePosixPath(str(path)).name)].append(position)
    return found


def _candidates(entry: CovidxEntry, by_name: dict[tuple[str, str], list[int]]) -> list[int]:
    if entry.source:
        source = HELD_SOURCES.get(entry.source)
        return by_name.get((source, entry.filename), []) if source else []
    return [p for source in HELD_SOURCES.values() for p in by_name.get((source, entry.filename), [])]


def _report_source(entry: CovidxEntry, rows: list[int], sources: list[str]) -> str:
    """The COVIDx source an entry is counted under; v1 entries take the source they matched."""
    if entry.source:
        return entry.source
    matched = {_COVIDX_NAME[sources[p]] for p in rows}
    return matched.pop() if len(matched) == 1 else UNSPECIFIED


def _disagrees(covidx_label: str, manifest_label: str) -> bool:
    """True when both sides know a label and they differ (``unknown`` here is not a disagreement)."""
    agrees = LABEL_AGREES.get(covidx_label.lower())
    return agrees is not None and manifest_label not in ("", "unknown") and manifest_label not in agrees


def covidx_split(manifest: pd.DataFrame, directory: Path, version: str) -> tuple[pd.Series, dict]:
    """The COVIDx ``version`` split of every manifest row (``"train"``/``"test"``/``""``) and a report.

    ``manifest`` needs ``source`` and ``path`` columns (``patient_id`` is used for the report).
    ``directory`` is the COVID-Net checkout (or its ``labels/`` folder); ``version`` is the
    file-name suffix: ``""`` for v1, ``"9A"``, ``"9B"``, ``"Sev"`` ...
    A row named in both train and test is put in test (never train on a test image) and
    counted under ``conflicts``.
    """
    parsed = read_version(directory, version)
    by_name = _rows_by_name(manifest)
    sources = [str(s) for s in manifest["source"]]
    labels = [str(v) for v in manifest["label"]] if "label" in manifest.columns else None
    split: list[str] = [""] * len(manifest)
    resolved: Counter[str] = Counter()
    unresolved: Counter[str] = Counter()
    disagreements: Counter[str] = Counter()
    for entry in parsed.entries:
        rows = _candidates(entry, by_name)
        counted = _report_source(entry, rows, sources)
        (resolved if rows else unresolved)[counted] += 1
        for position in rows:
            split[position] = "test" if "test" in (split[position], entry.split) else entry.split
            if labels is not None and _disagrees(entry.label, labels[position]):
                disagreements[counted] += 1
    series = pd.Series(split, index=manifest.index, name=f"covidx{version or '1'}", dtype=object)
    counts = {"resolved": resolved, "unresolved": unresolved, "label_disagreements": disagreements}
    return series, _report(version, parsed, series, manifest, by_name, counts)


def _conflicts(parsed: CovidxFile, by_name: dict[tuple[str, str], list[int]]) -> int:
    seen: dict[int, set[str]] = defaultdict(set)
    for entry in parsed.entries:
        for position in _candidates(entry, by_name):
            seen[position].add(entry.split)
    return sum(len(splits) > 1 for splits in seen.values())


def _patients_in_both(series: pd.Series, manifest: pd.DataFrame) -> int:
    if "patient_id" not in manifest.columns:
        return 0
    assigned = manifest.loc[series != "", "patient_id"].to_frame().assign(split=series[series != ""])
    per_patient = assigned.groupby("patient_id")["split"].nunique()
    return int((per_patient > 1).sum())


def _report(
    version: str,
    parsed: CovidxFile,
    series: pd.Series,
    manifest: pd.DataFrame,
    by_name: dict[tuple[str, str], list[int]],
    counts: dict[str, Counter[str]],
) -> dict:
    """Entries per split; resolved / unresolved / label disagreements per COVIDx source; leaks."""
    seen = set(counts["resolved"]) | set(counts["unresolved"])
    return {
        "version": version,
        "entries": {s: sum(e.split == s for e in parsed.entries) for s in SPLIT_NAMES},
        **{key: dict(sorted(counter.items())) for key, counter in counts.items()},
        "not_held": sorted(s for s in seen if s not in HELD_SOURCES and s != UNSPECIFIED),
        "rows": {s: int((series == s).sum()) for s in SPLIT_NAMES},
        "conflicts": _conflicts(parsed, by_name),
        "patients_in_both": _patients_in_both(series, manifest),
        "errors": [f"{where}: {message}" for where, message in parsed.errors],
    }


#: COVIDx label (lower-case) -> the manifest label a row listed with it is served as
#: (``negative`` names no single label: the row keeps its own).
SERVED_LABEL: dict[str, str] = {
    "normal": "normal",
    "pneumonia": "pneumonia",
    "covid-19": "covid-19",
    "positive": "covid-19",
    "level1": "covid-19",
    "level2": "covid-19",
}


def covidx_labels(manifest: pd.DataFrame, directory: Path, version: str) -> pd.Series:
    """COVIDx's label of every manifest row it lists (``""`` for rows it does not list or labels ``negative``).

    A scheme that lists an image we hold serves it with the scheme's label: ieee8023 holds
    images (patients 426a/426b of COVIDx 9A) that have no ``metadata.csv`` row, so the
    manifest labels them ``unknown``; COVIDx says COVID-19.
    """
    parsed = read_version(directory, version)
    by_name = _rows_by_name(manifest)
    labels: list[str] = [""] * len(manifest)
    for entry in parsed.entries:
        served = SERVED_LABEL.get(entry.label.lower(), "")
        for position in _candidates(entry, by_name):
            if served and (entry.split == "test" or not labels[position]):
                labels[position] = served
    return pd.Series(labels, index=manifest.index, name=f"covidx{version or '1'}_label", dtype=object)


def held_and_served(manifest: pd.DataFrame, directory: Path, version: str, served_labels: frozenset[str]) -> dict:
    """How many images COVIDx ``version`` lists, how many of them we hold, and how many a loader serves.

    Held: entries matched to a manifest row. Served: held rows whose COVIDx label (or, for
    ``negative``, their own) is one a loader serves by default.
    """
    parsed = read_version(directory, version)
    by_name = _rows_by_name(manifest)
    labels = covidx_labels(manifest, directory, version)
    own = manifest["label"].astype(str).tolist()
    listed = held = served = 0
    for entry in parsed.entries:
        listed += 1
        rows = _candidates(entry, by_name)
        if rows:
            held += 1
            if any((labels.iloc[p] or own[p]) in served_labels for p in rows):
                served += 1
    return {"version": version or "1", "listed": listed, "held": held, "served": served}
