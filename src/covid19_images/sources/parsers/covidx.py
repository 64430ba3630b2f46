"""lindawangg/COVID-Net: COVIDx split definitions, not images.

The repository holds ``labels/{train,test}_COVIDx<version>.txt`` files naming images of other
sources, so it contributes no manifest rows. Its parser only checks that the label files are
there and readable (each unreadable line, unknown source name or unpaired train/test file is
reported), so a schema change upstream shows up in ``sync`` rather than as silently empty
COVIDx splits. Applying a version to the manifest is :func:`covid19_images.manifest.covidx.covidx_split`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from covid19_images.core.schema import Entry, Problem
from covid19_images.sources.parsing import SourceContext

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


def label_files_in(directory: Path) -> dict[str, dict[str, Path]]:
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
    files = label_files_in(directory)
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
    for version in label_files_in(directory):
        entries = read_version(directory, version).entries
        counts[version] = {split: sum(e.split == split for e in entries) for split in SPLIT_NAMES}
    return counts


MAX_LINE_PROBLEMS = 20


def label_files(ctx: SourceContext) -> dict[str, dict[str, str]]:
    """``version -> {split: relative path}`` from the checkout's file list."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for relative in ctx.files_under(LABELS_DIR):
        path = PurePosixPath(relative)
        named = split_and_version(path.name) if path.parent.as_posix() == LABELS_DIR else None
        if named:
            split, version = named
            found[version][split] = relative
    return dict(found)


def _file_problems(ctx: SourceContext, name: str, split: str) -> Iterator[Problem]:
    parsed = read_label_file(ctx.directory / name, split, display=name)
    for where, message in parsed.errors[:MAX_LINE_PROBLEMS]:
        yield ctx.problem(f"unreadable COVIDx line: {message}", path=name, row=where)
    if len(parsed.errors) > MAX_LINE_PROBLEMS:
        yield ctx.problem(f"{len(parsed.errors) - MAX_LINE_PROBLEMS} more unreadable lines not listed", path=name)
    unknown = sorted({e.source for e in parsed.entries if e.source and e.source not in KNOWN_SOURCES})
    if unknown:
        yield ctx.problem(f"unknown COVIDx source names {unknown}; their entries stay unresolved", path=name)
    if not parsed.entries:
        yield ctx.problem("label file has no readable entries", path=name)


def parse(ctx: SourceContext) -> Iterator[Entry | Problem]:
    files = label_files(ctx)
    if not files:
        yield ctx.problem(f"no {LABELS_DIR}/{{train,test}}_COVIDx*.txt in checkout", path=LABELS_DIR, level="error")
        return
    for version, pair in sorted(files.items()):
        for split in SPLIT_NAMES:
            if split not in pair:
                yield ctx.problem(
                    f"COVIDx{version or ' v1'} has no {split} file", path=f"{LABELS_DIR}/{split}_COVIDx{version}.txt"
                )
                continue
            yield from _file_problems(ctx, pair[split], split)
