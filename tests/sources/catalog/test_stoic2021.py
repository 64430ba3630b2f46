"""STOIC2021: the parser over its miniature, bad reference rows, and the real reference.csv."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.conftest import run_parser
from tests.sources.catalog.portal import PORTAL, miniature_copy, needs_portal, portal_spec

SOURCE = "stoic2021"
REAL = PORTAL / "stoic2021" / "metadata" / "reference.csv"


def test_miniature_labels_follow_the_reference_rows(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "stoic")
    with open(folder / "metadata/reference.csv", newline="") as handle:
        reference = {r["PatientID"]: r for r in csv.DictReader(handle)}
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert not problems and sorted(e.patient_id for e in entries) == sorted(reference)
    for entry in entries:
        row = reference[entry.patient_id]
        assert entry.path == f"data/mha/{entry.patient_id}.mha"
        assert entry.label == ("covid-19" if row["probCOVID"] == "1" else "other")
        assert entry.extra == {"rt_pcr": int(row["probCOVID"]), "severe": int(row["probSevere"])}


def test_bad_rows_and_unlisted_volumes_are_reported_not_guessed(tmp_path: Path) -> None:
    folder = miniature_copy(SOURCE, tmp_path / "stoic")
    with open(folder / "metadata/reference.csv", "a") as handle:
        handle.write("abc,1,0\n999,2,0\n77,0,1\n")
    (folder / "data/mha/4242.mha").write_bytes((folder / "data/mha/6.mha").read_bytes())
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    messages = " | ".join(p.message for p in problems)
    assert "'abc'" in messages and "('2', '0')" in messages
    assert "severe outcome without COVID-19" in messages
    assert "no row for PatientID 4242" in messages
    assert {e.patient_id: e.label for e in entries}["4242"] in (None, "unknown")


@needs_portal
def test_the_real_reference_csv(tmp_path: Path) -> None:
    folder = tmp_path / "fetched"
    (folder / "metadata").mkdir(parents=True)
    (folder / "metadata/reference.csv").write_bytes(REAL.read_bytes())
    with open(REAL, newline="") as handle:
        rows = list(csv.DictReader(handle))
    (folder / "data/mha").mkdir(parents=True)
    for row in rows:
        (folder / f"data/mha/{row['PatientID']}.mha").write_bytes(b"")
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert not problems and len(entries) == len(rows) == 2000
    assert sum(e.label == "covid-19" for e in entries) == sum(r["probCOVID"] == "1" for r in rows)
    assert sum(e.extra["severe"] for e in entries) == sum(r["probSevere"] == "1" for r in rows)
    assert not any(r["probCOVID"] == "0" and r["probSevere"] == "1" for r in rows)  # severe implies COVID here
