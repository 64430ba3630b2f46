"""COVIDx split definitions (lindawangg/COVID-Net ``labels/``) applied to the images we hold.

COVIDx is the train/test split most COVID-19 X-ray papers report on. Its label files name
images by file name only, drawn from many sources (ieee8023 "cohen", Figure1 "fig1",
Actualmed "actmed", the Radiography DB "sirm", RSNA, RICORD, BIMCV, Stony Brook), so the
split is recovered by matching names against the manifest rows of the catalog source each
COVIDx source is held as (``covidx:`` in its source.yaml). A row matches by its base name,
or by ``extra.covidx_name`` where its parser knows how COVIDx renamed the image (RSNA's
``<patientId>.dcm`` is ``<patientId>.png``, RICORD's DICOM is ``MIDRC-RICORD-1C-<MRN>-<uid5>-<i>.png``,
the Radiography DB's ``COVID-12.png`` is ``COVID(12).png``); BIMCV names carry a
``-corrected`` suffix COVIDx added, ignored on both sides. Entries whose source is not held
stay unresolved and are counted per source.

The CXR-3/CXR-4 releases are prebuilt image sets with their own label files (``train.txt``,
``val.txt``, ``test.txt``: ``patient_id filename class data_source``); version ``CXR-4`` reads
them from the catalog source that holds that release (``covidx_release:`` in its source.yaml)
and serves that source's own images.

File format (no header, space-separated): ``patientid filename label`` for v1
(``*_COVIDx.txt``), ``patientid filename label source`` from v9A on. Patient ids can
themselves contain spaces (``COVID 70``), so lines are read from the right: the label and
the source come from small known vocabularies and the file name is the token before the
label; whatever remains is the patient id. ``rnsa`` is a typo of ``rsna`` in v9.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from covid19_images.core.schema import parse_extra
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

RELEASE_PREFIX = "CXR-"
#: COVIDx CT's releases (``CT-3A``): lists ``<split>_COVIDx_<version>.txt`` of ``filename class [box]``
CT_RELEASE_PREFIX = "CT-"
RELEASE_SPLITS = ("train", "val", "test")
#: how many unmatched file names the report names per COVIDx source
UNMATCHED_SHOWN = 10
_CORRECTED = re.compile(r"-corrected(?=\.[A-Za-z]+$)")


def name_key(name: str) -> str:
    """A COVIDx file name as it is compared: BIMCV's ``-corrected`` suffix (added by COVIDx) dropped."""
    return _CORRECTED.sub("", name)


@dataclass
class Listing:
    """One COVIDx version's entries; ``holder`` is the catalog source of a prebuilt release (``""`` otherwise)."""

    entries: list[CovidxEntry]
    errors: list[tuple[str, str]]
    holder: str = ""


def is_release(version: str) -> bool:
    """A prebuilt release (``CXR-4``, ``CT-3A``): read from the catalog source holding it, not COVID-Net's labels."""
    return version.upper().startswith((RELEASE_PREFIX, CT_RELEASE_PREFIX))


def read_listing(directory: Path, version: str) -> Listing:
    """The entries of ``version``: COVID-Net's label files, or a release's own (``directory`` = its source)."""
    if not is_release(version):
        parsed = read_version(directory, version)
        return Listing(parsed.entries, parsed.errors)
    if version.upper().startswith(CT_RELEASE_PREFIX):
        return _read_ct_release(Path(directory), version.upper())
    from covid19_images.sources.catalog.covidx_cxr4 import parse_label_line

    entries: list[CovidxEntry] = []
    errors: list[tuple[str, str]] = []
    for split in RELEASE_SPLITS:
        path = Path(directory) / f"{split}.txt"
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                patient, filename, label, source = parse_label_line(line)
            except ValueError as err:
                errors.append((where, str(err)))
                continue
            entries.append(CovidxEntry(split, patient, filename, label, source, where))
    if not entries and not errors:
        raise KeyError(f"no COVIDx {version} label files (train.txt, val.txt, test.txt) in {directory}")
    return Listing(entries, errors, Path(directory).name)


def _read_ct_release(directory: Path, version: str) -> Listing:
    """COVIDx CT's own lists: the split from the list's name, the label from the class digit, the
    patient from the file name (:func:`~covid19_images.sources.catalog.covidx_ct.identify`)."""
    from covid19_images.sources.catalog.covidx_ct import CLASSES, MAX_LIST_BYTES, identify

    entries: list[CovidxEntry] = []
    errors: list[tuple[str, str]] = []
    names = [f"{split}_COVIDx_{version}.txt" for split in RELEASE_SPLITS]
    for split, name in zip(RELEASE_SPLITS, names, strict=True):
        path = directory / name
        if not path.is_file():
            continue
        if path.stat().st_size > MAX_LIST_BYTES:
            errors.append((name, "larger than any COVIDx CT list; not read"))
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{name} line {number}"
            if len(fields) not in (2, 6) or fields[1] not in CLASSES:
                errors.append((where, "not `filename class [xmin ymin xmax ymax]`"))
                continue
            patient = identify(PurePosixPath(fields[0]).stem)[0]
            entries.append(CovidxEntry(split, patient, fields[0], CLASSES[fields[1]][1], directory.name, where))
    if not entries and not errors:
        raise KeyError(f"no COVIDx {version} lists ({', '.join(names)}) in {directory}")
    return Listing(entries, errors, directory.name)


def _rows_by_name(manifest: pd.DataFrame, holder: str) -> dict[tuple[str, str], list[int]]:
    """``(registry source, name key) -> manifest row positions`` for the held sources (or the release's holder)."""
    held = {holder} if holder else set(HELD_SOURCES.values())
    found: dict[tuple[str, str], list[int]] = defaultdict(list)
    extras = manifest["extra"] if "extra" in manifest.columns else pd.Series("", index=manifest.index)
    for position, (source, path, extra) in enumerate(zip(manifest["source"], manifest["path"], extras, strict=True)):
        if source not in held:
            continue
        names = {name_key(PurePosixPath(str(path)).name)}
        if "covidx_name" in str(extra):
            names.add(name_key(str(parse_extra(str(extra)).get("covidx_name", ""))))
        for name in names:
            found[(source, name)].append(position)
    return found


def _candidates(entry: CovidxEntry, by_name: dict[tuple[str, str], list[int]], holder: str) -> list[int]:
    key = name_key(entry.filename)
    if holder:
        return by_name.get((holder, key), [])
    if entry.source:  # a source no catalog source holds is no key of by_name
        return by_name.get((HELD_SOURCES.get(entry.source), key), [])  # type: ignore[arg-type]
    return [p for source in HELD_SOURCES.values() for p in by_name.get((source, key), [])]


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
    parsed = read_listing(directory, version)
    by_name = _rows_by_name(manifest, parsed.holder)
    sources = [str(s) for s in manifest["source"]]
    labels = [str(v) for v in manifest["label"]] if "label" in manifest.columns else None
    split: list[str] = [""] * len(manifest)
    resolved: Counter[str] = Counter()
    unresolved: Counter[str] = Counter()
    disagreements: Counter[str] = Counter()
    for entry in parsed.entries:
        rows = _candidates(entry, by_name, parsed.holder)
        counted = _report_source(entry, rows, sources)
        (resolved if rows else unresolved)[counted] += 1
        for position in rows:
            split[position] = "test" if "test" in (split[position], entry.split) else entry.split
            if labels is not None and _disagrees(entry.label, labels[position]):
                disagreements[counted] += 1
    series = pd.Series(split, index=manifest.index, name=f"covidx{version or '1'}", dtype=object)
    counts = {"resolved": resolved, "unresolved": unresolved, "label_disagreements": disagreements}
    return series, _report(version, parsed, series, manifest, by_name, counts)


def _conflicts(parsed: Listing, by_name: dict[tuple[str, str], list[int]]) -> int:
    seen: dict[int, set[str]] = defaultdict(set)
    for entry in parsed.entries:
        for position in _candidates(entry, by_name, parsed.holder):
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
    parsed: Listing,
    series: pd.Series,
    manifest: pd.DataFrame,
    by_name: dict[tuple[str, str], list[int]],
    counts: dict[str, Counter[str]],
) -> dict:
    """Entries per split; resolved / unresolved / label disagreements per COVIDx source; leaks."""
    seen = set(counts["resolved"]) | set(counts["unresolved"])
    splits = RELEASE_SPLITS if parsed.holder else SPLIT_NAMES
    return {
        "version": version,
        "entries": {s: sum(e.split == s for e in parsed.entries) for s in splits},
        **{key: dict(sorted(counter.items())) for key, counter in counts.items()},
        "not_held": sorted(s for s in seen if s not in HELD_SOURCES and s != UNSPECIFIED and not parsed.holder),
        "rows": {s: int((series == s).sum()) for s in splits},
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
    parsed = read_listing(directory, version)
    by_name = _rows_by_name(manifest, parsed.holder)
    labels: list[str] = [""] * len(manifest)
    for entry in parsed.entries:
        served = SERVED_LABEL.get(entry.label.lower(), "")
        for position in _candidates(entry, by_name, parsed.holder):
            if served and (entry.split == "test" or not labels[position]):
                labels[position] = served
    return pd.Series(labels, index=manifest.index, name=f"covidx{version or '1'}_label", dtype=object)


def held_and_served(
    manifest: pd.DataFrame,
    directory: Path,
    version: str,
    served_labels: frozenset[str],
    root: Path | None = None,
) -> dict:
    """What COVIDx ``version`` lists, and how much of it we hold, have fetched and serve, per COVIDx source.

    * listed: entries of the label files;
    * held: entries matched to a manifest row (committed rows count even where the source's
      files were never fetched: a portal source's rows stay in the manifest);
    * fetched: held entries whose file is on disk under ``root`` (all held ones without ``root``);
    * served: fetched entries whose COVIDx label (or, for ``negative``, their own) a loader serves.

    ``sources`` breaks the four counts down per COVIDx source (``rnsa`` counted as ``rsna``) with
    ``held_as`` (the catalog source, ``""`` when no catalog source holds it) and ``unmatched``:
    up to :data:`UNMATCHED_SHOWN` listed file names no manifest row matches.
    """
    parsed = read_listing(directory, version)
    by_name = _rows_by_name(manifest, parsed.holder)
    labels = covidx_labels(manifest, directory, version)
    own = manifest["label"].astype(str).tolist()
    present = [root is None or (Path(root) / str(path)).is_file() for path in manifest["path"]]  # root-relative
    per_source: dict[str, dict] = {}
    for entry in parsed.entries:
        item = per_source.setdefault(
            entry.source or UNSPECIFIED,
            {
                "held_as": parsed.holder or HELD_SOURCES.get(entry.source, ""),
                "listed": 0,
                "held": 0,
                "fetched": 0,
                "served": 0,
                "unmatched": [],
                "unmatched_count": 0,
            },
        )
        item["listed"] += 1
        rows = _candidates(entry, by_name, parsed.holder)
        if not rows:
            item["unmatched_count"] += 1
            if len(item["unmatched"]) < UNMATCHED_SHOWN:
                item["unmatched"].append(entry.filename)
            continue
        item["held"] += 1
        fetched = [p for p in rows if present[p]]
        item["fetched"] += bool(fetched)
        item["served"] += any((labels.iloc[p] or own[p]) in served_labels for p in fetched)
    in_manifest = set(manifest["source"])
    for item in per_source.values():
        item["in_manifest"] = item["held_as"] in in_manifest  # False: not in this root, or never synced
    totals = {key: sum(item[key] for item in per_source.values()) for key in ("listed", "held", "fetched", "served")}
    return {"version": version or "1", **totals, "sources": dict(sorted(per_source.items()))}
