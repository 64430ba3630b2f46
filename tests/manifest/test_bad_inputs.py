"""The bad-input corpus, synced for real: every bad file or row is reported with source, file and
row, every path trick is refused, and every other image still lands in the manifest.

The corpus (``badinputs.write_bad_corpus``) is an ieee8023-shaped upstream built from the
real samples: a real JPEG cut in half, a real PNG named ``.jpg``, a real X-ray as WebP
named ``.png``, as 16-bit PNG, as CMYK JPEG, as compressed DICOM, the real medseg Git LFS
pointer, and a ``metadata.csv`` with a BOM, CRLF, a duplicated header column, a cp1252
byte, a ragged row, ``../`` and absolute paths and symlinks out of the checkout. It is
published as a bare repository and synced with ``sync(root, mirror=...)``.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from covid19_images.core.paths import UnsafePath, safe_relative
from covid19_images.core.schema import Problem
from covid19_images.manifest import build, source_build
from covid19_images.manifest.build import MANIFEST_FILE, PROBLEMS_FILE, read_manifest
from covid19_images.quality.verify import verify
from covid19_images.sources.parsing import SourceContext, read_metadata_csv
from covid19_images.sources.registry import SourceSpec
from covid19_images.sync.run import SyncReport, sync
from tests.badinputs import (
    FAILING_CASES,
    UNICODE_NAME,
    WORKING_CASES,
    Case,
    Upstream,
    make_root,
    small_tree,
    write_bad_corpus,
)

pytestmark = pytest.mark.upstream
SOURCE = "bad-inputs"
PREFIX = f"datasets/{SOURCE}/"


@dataclass
class Synced:
    root: Path
    outside: Path
    cases: list[Case]
    report: SyncReport
    manifest: pd.DataFrame
    problems_csv: list[dict[str, str]]

    def case(self, what: str) -> Case:
        return next(c for c in self.cases if c.what == what)

    def problems_for(self, case: Case) -> list[Problem]:
        return [
            p
            for p in self.report.build.problems
            if p.source == SOURCE and (case.relative in p.path or p.row == f"metadata.csv line {case.line}")
        ]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Synced:
    base = tmp_path_factory.mktemp("bad-inputs")
    mirror = base / "mirror"
    bad = Upstream(mirror, "example", SOURCE)
    cases = write_bad_corpus(base / "tree", base / "outside")
    bad.publish(base / "tree")
    empty = Upstream(mirror, "example", "empty-metadata")
    tree = small_tree(base / "empty-tree", ["000005-5-b.jpg"])
    (tree / "metadata.csv").write_bytes(b"")
    empty.publish(tree)
    root = make_root(base / "root", [{"name": SOURCE, "url": bad.url}, {"name": "empty-metadata", "url": empty.url}])
    report = sync(root, mirror=mirror, progress=False)
    assert not report.failed, report.summary()
    with open(root / PROBLEMS_FILE, newline="", encoding="utf-8") as handle:
        problems_csv = list(csv.DictReader(handle))
    return Synced(root, base / "outside", cases, report, read_manifest(root), problems_csv)


def test_case_names_match_the_corpus(synced: Synced) -> None:
    assert tuple(c.what for c in synced.cases if c.works) == WORKING_CASES
    assert tuple(c.what for c in synced.cases if not c.works) == FAILING_CASES


@pytest.mark.parametrize("what", WORKING_CASES)
def test_case_lands_in_the_manifest(synced: Synced, what: str) -> None:
    case = synced.case(what)
    rows = synced.manifest[synced.manifest["path"] == PREFIX + case.relative]
    assert len(rows) == 1, f"{case.what}: not in the manifest; problems: {synced.problems_for(case)}"
    row = rows.iloc[0]
    assert row["format"] == case.format, case.what
    assert int(row["width"]) > 0 and int(row["height"]) > 0
    assert len(row["sha256"]) == 64 and len(row["pixel_sha256"]) == 64 and row["phash"]
    assert len(row["git_blob"]) == 40, "the git blob must be found even for unusual file names"
    assert not synced.problems_for(case) or case.what.startswith("CMYK")  # only the cp1252 row warns


@pytest.mark.parametrize("what", FAILING_CASES)
def test_case_is_reported_with_source_file_and_row(synced: Synced, what: str) -> None:
    case = synced.case(what)
    assert PREFIX + case.relative not in set(synced.manifest["path"])
    found = synced.problems_for(case)
    assert any(case.message in p.message for p in found), f"{case.what}: {[str(p) for p in found]}"
    with_row = [p for p in found if p.row == f"metadata.csv line {case.line}"]
    assert with_row, f"{case.what}: no problem names metadata.csv line {case.line}: {[str(p) for p in found]}"
    text = str(with_row[-1])
    assert text.startswith(f"[{SOURCE}] ") and f"metadata.csv line {case.line}" in text
    written = [r for r in synced.problems_csv if r["source"] == SOURCE and r["row"] == f"metadata.csv line {case.line}"]
    assert written and all(r["message"] for r in written)


def test_exactly_the_working_cases_land(synced: Synced) -> None:
    expected = {PREFIX + c.relative for c in synced.cases if c.works}
    assert set(synced.manifest["path"]) == expected


def test_path_tricks_never_read_outside_the_checkout(synced: Synced) -> None:
    secret = hashlib.sha256((synced.outside / "secret.jpg").read_bytes()).hexdigest()
    assert secret not in set(synced.manifest["sha256"])
    assert all(p.startswith(PREFIX) for p in synced.manifest["path"])
    messages = [str(p) for p in synced.report.build.problems]
    climb = [m for m in messages if "refused: path 'images/../../outside/secret.jpg' climbs out with '..'" in m]
    assert len(climb) == 1 and "metadata.csv line" in climb[0], "one refusal, naming the metadata row"
    assert not any("outside/secret.jpg, which is not in the checkout" in m for m in messages)
    assert any(f"refused: absolute path '{synced.outside / 'secret.jpg'}' refused" in m for m in messages)
    for link in ("escape-absolute.jpg", "escape-relative.jpg"):
        assert any(
            f"refused: path 'images/{link}' resolves outside the source folder (symlink?)" in m for m in messages
        )


def test_messy_metadata_csv_is_read_correctly(synced: Synced) -> None:
    problems = [p for p in synced.report.build.problems if p.source == SOURCE and p.path == "metadata.csv"]
    by_row = {p.row: p.message for p in problems}
    cmyk = next(c for c in synced.cases if c.relative == "images/cmyk.jpg")
    assert by_row[f"metadata.csv line {cmyk.line}"] == (
        f"not valid UTF-8 on 1 line(s) ({cmyk.line}); those bytes were read as cp1252 "
        "(check accented names on those lines)"
    )
    assert by_row["metadata.csv line 1"] == "header column 'clinical_notes' appears twice; kept as clinical_notes.1"
    ragged = next(c for c in synced.cases if c.relative == "images/ragged.jpg")
    assert by_row[f"metadata.csv line {ragged.line}"] == (
        "ragged row: 20 fields, header has 18 (unquoted comma?); row skipped"
    )
    rows = synced.manifest.set_index("path")
    # BOM: the first column is still "patientid"; CRLF and the two-line note did not shift anything
    assert rows.loc[PREFIX + "images/good.jpg", "patient_id"] == f"{SOURCE}:1"
    assert rows.loc[PREFIX + f"images/{UNICODE_NAME}", "patient_id"] == f"{SOURCE}:12"
    # only the bad byte was read as cp1252; the UTF-8 file name on another line is intact
    assert '"location":"Hôpital Saint-Louis"' in rows.loc[PREFIX + "images/cmyk.jpg", "extra"]
    assert not synced.manifest.map(lambda v: "\r" in v or "\ufeff" in v).any().any()


def test_empty_metadata_file_is_reported_and_other_sources_are_indexed(synced: Synced) -> None:
    problems = [p for p in synced.report.build.problems if p.source == "empty-metadata"]
    assert [str(p) for p in problems] == ["[empty-metadata] metadata.csv: metadata file is empty"]
    assert problems[0].level == "error"
    assert (synced.manifest["source"] == SOURCE).sum() == sum(c.works for c in synced.cases)
    assert any(
        r["source"] == "empty-metadata" and r["message"] == "metadata file is empty" for r in synced.problems_csv
    )


def test_manifest_files_are_complete_csv(synced: Synced) -> None:
    frame = pd.read_csv(synced.root / MANIFEST_FILE, dtype=str, keep_default_na=False)
    assert len(frame) == len(synced.manifest)
    assert set(frame.columns) == set(synced.manifest.columns)


def test_problem_paths_are_source_relative_and_verify_reads_them(synced: Synced) -> None:
    """A file the probe could not decode (a builder problem) is named like every problem names a
    file, relative to datasets/<source>/, so verify knows it was explained and lists it nowhere."""
    undecodable = [synced.case("truncated JPEG"), synced.case("zero-byte file")]
    written = {(r["path"], r["row"]) for r in synced.problems_csv if r["source"] == SOURCE}
    for case in undecodable:
        assert (case.relative, f"metadata.csv line {case.line}") in written, case.what
    assert not [r["path"] for r in synced.problems_csv if r["path"].startswith("datasets/")]
    findings = verify(synced.root, progress=False)
    listed = {item["path"] for item in findings.upstream_unused + findings.unreferenced}
    assert PREFIX + synced.case("truncated JPEG").relative not in listed


def test_a_parser_reports_problems_one_way_and_cannot_yield_them(tmp_path: Path, monkeypatch) -> None:
    """``ctx.report`` records at once; a yielded Problem is a parser bug that fails the source loudly."""
    folder = tmp_path / "datasets" / "rogue"
    folder.mkdir(parents=True)
    Image.new("L", (8, 8), 1).save(folder / "a.png")
    spec = SourceSpec("rogue", "https://github.com/example/rogue.git", "master", "rogue", ("xray",), "CC0-1.0")

    def rogue(ctx: SourceContext):
        ctx.report("reported before the bug", path="a.png")
        yield Problem("rogue", "yielded instead of reported", path="a.png")

    monkeypatch.setattr(source_build, "get_parser", lambda name: rogue)
    result = build.build_manifest(tmp_path, {"rogue": spec}, progress=False)
    messages = [p.message for p in result.problems]
    assert "reported before the bug" in messages
    assert any("parser rogue failed: TypeError: parse() yielded a Problem" in m for m in messages)
    assert "yielded instead of reported" not in messages and result.manifest.empty
    ctx = _ctx(tmp_path)
    assert not hasattr(ctx, "problem"), "building a Problem without recording it must not be possible"
    with pytest.raises(AttributeError):
        ctx.problems.append(Problem("unit", "appended behind report's back"))  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the readers on their own


def _ctx(directory: Path) -> SourceContext:
    spec = SourceSpec(
        "unit", "https://github.com/example/unit.git", "master", "ieee8023-covid-chestxray", ("xray",), "CC0-1.0"
    )
    return SourceContext(spec, directory, [])


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("../x.png", "climbs out with '..'"),
        ("images/../../x.png", "climbs out with '..'"),
        ("images\\..\\..\\x.png", "climbs out with '..'"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/x.png", "absolute path"),
        ("", "empty or NUL"),
        ("images/x\0.png", "empty or NUL"),
        (".", "names no file"),
    ],
)
def test_safe_relative_refuses(tmp_path: Path, relative: str, reason: str) -> None:
    with pytest.raises(UnsafePath, match=reason):
        safe_relative(tmp_path, relative)


def test_safe_relative_accepts_odd_but_harmless_names(tmp_path: Path) -> None:
    for name in ("a:b.png", "./images/x.png", "images//x.png", UNICODE_NAME, "100% (copy) +1.png"):
        assert safe_relative(tmp_path, name).as_posix() == name.replace("./", "").replace("//", "/")


def test_metadata_reader_refuses_a_metadata_path_outside(tmp_path: Path) -> None:
    (tmp_path / "outside.csv").write_text("a,b\n1,2\n")
    source = tmp_path / "source"
    source.mkdir()
    (source / "linked.csv").symlink_to(tmp_path / "outside.csv")
    ctx = _ctx(source)
    assert read_metadata_csv(ctx, "../outside.csv") is None
    assert read_metadata_csv(ctx, "linked.csv") is None
    assert [p.message for p in ctx.problems] == [
        "refused: path '../outside.csv' climbs out with '..'",
        "refused: path 'linked.csv' resolves outside the source folder (symlink?)",
    ]


def test_leading_comment_lines_are_skipped_and_rows_keep_their_file_line_numbers(tmp_path: Path) -> None:
    # ieee8023's covid-severity-scores.csv: "##" lines (with trailing commas) before the header
    (tmp_path / "scores.csv").write_text("## title,,\n## licence,,\nfilename,a,b\nx.png,1,2\ny.png,3\n")
    ctx = _ctx(tmp_path)
    frame = read_metadata_csv(ctx, "scores.csv", comment_prefix="#")
    assert list(frame.columns) == ["filename", "a", "b", "_row"]
    assert frame["_row"].tolist() == ["scores.csv line 4"]
    assert [p.row for p in ctx.problems] == ["scores.csv line 5"]  # the ragged row, by its line in the file


def test_uniform_trailing_commas_are_forgiven_but_a_single_long_row_is_not(tmp_path: Path) -> None:
    (tmp_path / "uniform.csv").write_text("a,b\n1,2,\n3,4,\n")
    (tmp_path / "shifted.csv").write_text("a,b,c\n1,2,\n3,x,y,\n5,6,\n")
    ctx = _ctx(tmp_path)
    uniform = read_metadata_csv(ctx, "uniform.csv")
    assert uniform[["a", "b"]].values.tolist() == [["1", "2"], ["3", "4"]] and not ctx.problems
    shifted = read_metadata_csv(ctx, "shifted.csv")
    assert shifted["a"].tolist() == ["1", "5"]
    assert [(p.row, p.message) for p in ctx.problems] == [
        ("shifted.csv line 3", "ragged row: 4 fields, header has 3 (unquoted comma?); row skipped")
    ]


def test_every_cell_is_stripped_of_whitespace_as_str_strip_does_and_no_more(tmp_path: Path) -> None:
    """Cells are stripped column by column, a column whose cells need none taken whole: whatever a
    column holds (Unicode spaces, NUL, the unit separator, empty cells, quoted newlines), each
    cell must come out as ``str.strip`` makes it, and a column of clean cells unchanged."""
    columns = {
        "clean": ["a.png", "b c.png", "", "d.png", "e.png"],
        "spaced": [" x", "y ", "\u00a0z\u2003", "\t", "w"],
        "nul": ["p\x00", "\x00 q", "r", "s \x00", "t"],
        "separator": ["\x1fu", "v\x1f", "\x1c", "x", "y"],
        "quoted": ['"multi\nline "', '" lead"', "plain", '"a,b"', ""],
    }
    header = ",".join(columns)
    rows = [",".join(cells) for cells in zip(*columns.values(), strict=True)]
    (tmp_path / "cells.csv").write_bytes((header + "\n" + "\n".join(rows) + "\n").encode())
    ctx = _ctx(tmp_path)
    frame = read_metadata_csv(ctx, "cells.csv")
    assert not ctx.problems
    for name, cells in columns.items():
        expected = [cell.strip('"').strip() if cell.startswith('"') else cell.strip() for cell in cells]
        assert frame[name].tolist() == expected, name
    assert frame["clean"].tolist() == columns["clean"]
    assert frame["_row"].tolist() == [
        "cells.csv line 2",
        "cells.csv line 4",
        "cells.csv line 5",
        "cells.csv line 6",
        "cells.csv line 7",
    ]
