"""COVIDx split definitions: label-file parsing, the no-image parser, resolution against a manifest."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from covid19_images.core.schema import Entry, Problem
from covid19_images.manifest.covidx import covidx_split, entries_per_version, parse_line, read_version
from tests.conftest import run_parser

SOURCE = "covidx-splits"
SAMPLE = "lindawangg-COVID-Net"
#: registry source, sample folder, COVIDx source name
HELD = (
    ("ieee8023-covid-chestxray", "ieee8023-covid-chestxray-dataset", "cohen"),
    ("figure1-xray", "agchung-Figure1-COVID-chestxray-dataset", "fig1"),
    ("actualmed-xray", "agchung-Actualmed-COVID-chestxray-dataset", "actmed"),
)


def run(registry, name: str, directory: Path) -> tuple[list[Entry], list[Problem]]:
    spec = registry[name]
    return run_parser(spec, directory)


def write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


# --- line format ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("3 SARS-Fig8a-day0.jpeg pneumonia", ("3", "SARS-Fig8a-day0.jpeg", "pneumonia", "")),
        ("ANON25 CR.1.2.840.png COVID-19 actmed", ("ANON25", "CR.1.2.840.png", "COVID-19", "actmed")),
        ("COVID 70 COVID-00070.jpg COVID-19 fig1", ("COVID 70", "COVID-00070.jpg", "COVID-19", "fig1")),
        ("COVID 70 COVID-00070.jpg COVID-19", ("COVID 70", "COVID-00070.jpg", "COVID-19", "")),
        ("fe26 fe26.png normal rnsa\r", ("fe26", "fe26.png", "normal", "rsna")),
        ("x x.png positive newsource", ("x", "x.png", "positive", "newsource")),
    ],
)
def test_parse_line(line: str, expected: tuple[str, str, str, str]) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    "line",
    ["x x.png", "x x.png sick cohen", "x notes.txt normal cohen", "x.png normal cohen", "x x.png cohen normal"],
)
def test_parse_line_refuses(line: str) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


# --- the parser ----------------------------------------------------------------------------


@pytest.mark.upstream
def test_parser_yields_nothing_for_the_real_label_files(shared: Path, registry) -> None:
    entries, problems = run(registry, SOURCE, shared / SAMPLE)
    assert entries == []
    assert problems == []


@pytest.mark.upstream
def test_entries_per_version_match_line_counts(shared: Path) -> None:
    labels = shared / SAMPLE / "labels"
    expected: dict[str, dict[str, int]] = {}
    for path in labels.glob("*_COVIDx*.txt"):
        split, version = path.stem.split("_COVIDx")
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        expected.setdefault(version, {})[split] = len(lines)
    assert expected
    assert entries_per_version(shared / SAMPLE) == expected


def test_parser_reports_missing_and_broken_files(tmp_path: Path, registry) -> None:
    _entries, problems = run(registry, SOURCE, tmp_path)
    assert [p.level for p in problems] == ["error"]

    write(
        tmp_path / "labels" / "train_COVIDx9A.txt",
        ["1 a.png COVID-19 cohen", "2 b.png maybe cohen", "3 c.png normal mars"],
    )
    entries, problems = run(registry, SOURCE, tmp_path)
    assert entries == []
    rows = {p.row: p.message for p in problems if p.row}
    assert list(rows) == ["labels/train_COVIDx9A.txt line 2"]
    messages = " | ".join(p.message for p in problems)
    assert "no test file" in messages
    assert "['mars']" in messages


# --- resolution against a manifest ---------------------------------------------------------


def held_files(shared: Path) -> dict[str, set[str]]:
    """COVIDx source -> image base names that exist in our sample AND have a metadata row.

    Computed from the files with the csv module, independently of the parsers. ieee8023
    images without a metadata row count too: they are indexed (label unknown) so a COVIDx
    scheme can serve them (issue 14).
    """
    found: dict[str, set[str]] = {}
    ieee = shared / "ieee8023-covid-chestxray-dataset"
    with (ieee / "metadata.csv").open(newline="", encoding="utf-8", errors="replace") as handle:
        found["cohen"] = {
            r["filename"] for r in csv.DictReader(handle) if (ieee / r["folder"] / r["filename"]).is_file()
        }
    found["cohen"] |= {p.name for p in (ieee / "images").iterdir() if p.is_file()}
    actualmed = shared / "agchung-Actualmed-COVID-chestxray-dataset"
    with (actualmed / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        found["actmed"] = {
            r["imagename"] for r in csv.DictReader(handle) if (actualmed / "images" / r["imagename"]).is_file()
        }
    figure1 = shared / "agchung-Figure1-COVID-chestxray-dataset"
    with (figure1 / "metadata.csv").open(newline="", encoding="cp1252") as handle:
        ids = {r["patientid"] for r in csv.DictReader(handle)}
    found["fig1"] = {p.name for p in (figure1 / "images").iterdir() if p.stem in ids}
    return found


def manifest_from_samples(shared: Path, registry) -> pd.DataFrame:
    rows = []
    for name, folder, _covidx in HELD:
        entries, _problems = run(registry, name, shared / folder)
        rows += [
            {
                "source": name,
                "path": f"datasets/{name}/{e.path}",
                "patient_id": f"{name}:{e.patient_id}",
                "label": e.label,
            }
            for e in entries
        ]
    return pd.DataFrame(rows)


def raw_entries(labels: Path, version: str) -> list[tuple[str, str, str]]:
    """(split, filename, source) with a plain split(): the real files have no spaces in ids."""
    found = []
    for split in ("train", "test"):
        for line in (labels / f"{split}_COVIDx{version}.txt").read_text().splitlines():
            parts = line.split()
            assert len(parts) in (3, 4), line
            source = parts[3] if len(parts) == 4 else ""
            found.append((split, parts[1], "rsna" if source == "rnsa" else source))  # INDEX: "rnsa" is a typo
    return found


@pytest.mark.upstream
@pytest.mark.parametrize("version", ["9A", "9B", ""])
def test_resolves_exactly_the_entries_we_hold(shared: Path, registry, version: str) -> None:
    manifest = manifest_from_samples(shared, registry)
    held = held_files(shared)
    all_held = set().union(*held.values())
    raw = raw_entries(shared / SAMPLE / "labels", version)
    expected = Counter(
        source or "any"
        for _split, filename, source in raw
        if filename in (held.get(source, set()) if source else all_held)
    )
    assert sum(expected.values()) > 0, "the samples should share some images with COVIDx"

    split, report = covidx_split(manifest, shared / SAMPLE, version)

    assert sum(report["resolved"].values()) == sum(expected.values())
    if version:
        assert report["resolved"] == dict(expected)
        not_ours = Counter(source for _s, _f, source in raw if source not in held)
        for source, count in not_ours.items():
            assert report["unresolved"][source] == count
    assert report["entries"] == dict(Counter(s for s, _f, _src in raw))
    # every manifest row whose base name COVIDx lists for a held source carries that split
    wanted = {}
    for s, filename, source in raw:
        if (source in held or not source) and filename in all_held:
            wanted[filename] = "test" if "test" in (s, wanted.get(filename)) else s
    names = manifest["path"].map(lambda p: Path(p).name)
    assert (split[names.isin(wanted)] == names[names.isin(wanted)].map(wanted)).all()
    assert (split[~names.isin(wanted)] == "").all()
    assert report["errors"] == []


def test_generated_conflicts_v1_and_disagreements(tmp_path: Path) -> None:
    manifest = pd.DataFrame(
        {
            "source": [
                "ieee8023-covid-chestxray",
                "figure1-xray",
                "actualmed-xray",
                "actualmed-xray",
                "pocus-ultrasound",
            ],
            "path": [
                "datasets/ieee8023-covid-chestxray/images/a.png",
                "datasets/figure1-xray/images/COVID-00001.jpg",
                "datasets/actualmed-xray/images/CR.1.png",
                "datasets/actualmed-xray/images/CR.2.png",
                "datasets/pocus-ultrasound/a.png",
            ],
            "patient_id": ["ieee:1", "fig:COVID-00001", "act:ANON1", "act:ANON1", "pocus:x"],
            "label": ["covid-19", "normal", "unknown", "normal", "covid-19"],
        }
    )
    labels = tmp_path / "labels"
    write(
        labels / "train_COVIDx9A.txt",
        [
            "1 a.png COVID-19 cohen",
            "COVID 1 COVID-00001.jpg COVID-19 fig1",
            "ANON1 CR.1.png COVID-19 actmed",
            "9 z.png normal rsna",
            "8 y.png normal padchest",
        ],
    )
    write(labels / "test_COVIDx9A.txt", ["1 a.png COVID-19 cohen", "ANON1 CR.2.png normal actmed"])
    write(labels / "train_COVIDx.txt", ["1 a.png COVID-19", "7 q.png normal"])
    write(labels / "test_COVIDx.txt", ["ANON1 CR.2.png normal"])

    split, report = covidx_split(manifest, tmp_path, "9A")
    assert list(split) == ["test", "train", "train", "test", ""]  # a.png is in both: test wins
    assert report["conflicts"] == 1
    assert report["resolved"] == {"actmed": 2, "cohen": 2, "fig1": 1}
    assert report["unresolved"] == {"padchest": 1, "rsna": 1}
    assert report["not_held"] == ["padchest"]  # rsna is held by a catalog source (rsna-pneumonia), not here
    assert report["label_disagreements"] == {"fig1": 1}  # unknown here is not a disagreement
    assert report["patients_in_both"] == 1  # ANON1 has a train and a test image

    split, report = covidx_split(manifest, labels, "")
    assert list(split) == ["train", "", "", "test", ""]
    assert report["resolved"] == {"actmed": 1, "cohen": 1}
    assert report["unresolved"] == {"unspecified": 1}

    with pytest.raises(KeyError):
        read_version(tmp_path, "8B")


@pytest.mark.parametrize("test_first", [False, True])
def test_an_image_listed_in_train_and_test_with_different_labels_is_test_with_the_test_label(
    tmp_path: Path, test_first: bool
) -> None:
    from covid19_images.manifest.covidx import covidx_labels

    manifest = pd.DataFrame(
        {
            "source": ["ieee8023-covid-chestxray", "ieee8023-covid-chestxray"],
            "path": [
                "datasets/ieee8023-covid-chestxray/images/a.png",
                "datasets/ieee8023-covid-chestxray/images/b.png",
            ],
            "patient_id": ["ieee:1", "ieee:2"],
            "label": ["unknown", "unknown"],
        }
    )
    labels = tmp_path / "labels"
    train = ["1 a.png normal cohen", "2 b.png pneumonia cohen"]
    test = ["1 a.png COVID-19 cohen"]
    write(labels / "train_COVIDx9A.txt", train)
    write(labels / "test_COVIDx9A.txt", test)
    if test_first:  # the order of the lines must not matter
        write(labels / "train_COVIDx9A.txt", list(reversed(train)))
    split, report = covidx_split(manifest, tmp_path, "9A")
    assert list(split) == ["test", "train"] and report["conflicts"] == 1
    assert list(covidx_labels(manifest, tmp_path, "9A")) == ["covid-19", "pneumonia"]
