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

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

#: COVIDx source name -> registry name of the source we hold it as.
HELD_SOURCES: dict[str, str] = {
    "cohen": "ieee8023-covid-chestxray",
    "fig1": "figure1-xray",
    "actmed": "actualmed-xray",
}
_COVIDX_NAME = {registry: covidx for covidx, registry in HELD_SOURCES.items()}
SOURCE_ALIASES = {"rnsa": "rsna"}
KNOWN_SOURCES = frozenset({*HELD_SOURCES, "sirm", "rsna", "ricord", "bimcv", "stonybrook"})
#: COVIDx label (lower-case) -> the manifest labels it agrees with.
LABEL_AGREES: dict[str, frozenset[str]] = {
    "normal": frozenset({"normal"}),
    "pneumonia": frozenset({"pneumonia"}),
    "covid-19": frozenset({"covid-19"}),
    "positive": frozenset({"covid-19"}),
    "negative": frozenset({"normal", "pneumonia", "other"}),
    "level1": frozenset({"covid-19"}),
    "level2": frozenset({"covid-19"}),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm")
SPLIT_NAMES = ("train", "test")
UNSPECIFIED = "unspecified"
_FILE = re.compile(r"^(?P<split>train|test)_COVIDx(?P<version>[0-9A-Za-z]*)\.txt$")
LABELS_DIR = "labels"


@dataclass(frozen=True)
class CovidxEntry:
    """One line of a COVIDx label file."""

    split: str
    patient_id: str
    filename: str
    label: str
    source: str
    line: str


@dataclass
class CovidxFile:
    """A parsed label file: its entries and the lines it could not read."""

    entries: list[CovidxEntry] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (line, message)


def parse_line(text: str) -> tuple[str, str, str, str]:
    """``(patient_id, filename, label, source)`` from one line; ``source`` is ``""`` for v1.

    Raises ``ValueError`` for a line that fits neither layout.
    """
    tokens = text.split()
    if len(tokens) < 3:
        raise ValueError(f"{len(tokens)} fields, need at least 3")
    source = ""
    if tokens[-1].lower() not in LABEL_AGREES:
        if tokens[-2].lower() not in LABEL_AGREES:
            raise ValueError(f"no known label in the last two fields {tokens[-2:]}")
        source = SOURCE_ALIASES.get(tokens[-1].lower(), tokens[-1].lower())
        tokens = tokens[:-1]
    label = tokens[-1]
    filename = tokens[-2]
    patient = " ".join(tokens[:-2])
    if not filename.lower().endswith(IMAGE_SUFFIXES):
        raise ValueError(f"{filename!r} is not an image file name")
    if not patient:
        raise ValueError("no patient id before the file name")
    return patient, filename, label, source


def split_and_version(name: str) -> tuple[str, str] | None:
    """``("train", "9A")`` for ``train_COVIDx9A.txt``; None for any other file name."""
    match = _FILE.match(name)
    return (match.group("split"), match.group("version")) if match else None


def find_labels_dir(directory: Path) -> Path:
    """``<checkout>/labels`` if it exists, else ``directory`` itself (a bare labels folder)."""
    directory = Path(directory)
    return directory / LABELS_DIR if (directory / LABELS_DIR).is_dir() else directory


def label_files(directory: Path) -> dict[str, dict[str, Path]]:
    """``version -> {"train": path, "test": path}``; version ``""`` is v1 (``train_COVIDx.txt``)."""
    found: dict[str, dict[str, Path]] = defaultdict(dict)
    labels = find_labels_dir(directory)
    if not labels.is_dir():
        return {}
    for path in sorted(labels.iterdir()):
        named = split_and_version(path.name)
        if named and path.is_file():
            split, version = named
            found[version][split] = path
    return dict(found)


def read_label_file(path: Path, split: str, *, display: str = "") -> CovidxFile:
    """Entries of one label file; ``display`` names the file in ``line`` (default: its base name)."""
    result = CovidxFile()
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{display or path.name} line {number}"
        try:
            patient, filename, label, source = parse_line(line)
        except ValueError as err:
            result.errors.append((where, str(err)))
            continue
        result.entries.append(CovidxEntry(split, patient, filename, label, source, where))
    return result


def read_version(directory: Path, version: str) -> CovidxFile:
    """Every train and test entry of one COVIDx version."""
    files = label_files(directory)
    if version not in files:
        known = ", ".join(repr(v) for v in sorted(files)) or "none"
        raise KeyError(f"no COVIDx version {version!r} under {find_labels_dir(directory)} (have {known})")
    merged = CovidxFile()
    for split in SPLIT_NAMES:
        path = files[version].get(split)
        if path is None:
            merged.errors.append((f"{split}_COVIDx{version}.txt", "file missing"))
            continue
        part = read_label_file(path, split)
        merged.entries.extend(part.entries)
        merged.errors.extend(part.errors)
    return merged


def entries_per_version(directory: Path) -> dict[str, dict[str, int]]:
    """``version -> {"train": n, "test": m}`` (readable entries) for every version present."""
    counts: dict[str, dict[str, int]] = {}
    for version in label_files(directory):
        entries = read_version(directory, version).entries
        counts[version] = {split: sum(e.split == split for e in entries) for split in SPLIT_NAMES}
    return counts


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
