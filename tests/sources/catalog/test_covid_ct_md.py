"""COVID-CT-MD: folders decide the diagnosis, the patient is the folder; the real Index.csv and label arrays."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tests.conftest import run_parser
from tests.sources.catalog.portal import PORTAL, miniature_copy, needs_portal, portal_spec

SOURCE = "covid-ct-md"
REAL = PORTAL / "covid-ct-md"


def test_miniature_every_dicom_with_its_folder_diagnosis_and_series(tmp_path: Path) -> None:
    import pydicom

    folder = miniature_copy(SOURCE, tmp_path / "ctmd")
    dicoms = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.dcm"))
    entries, problems = run_parser(portal_spec(SOURCE), folder)
    assert sorted(e.path for e in entries) == dicoms and not problems
    labels = {"COVID-19 subjects": "covid-19", "Cap subjects": "pneumonia", "Normal subjects": "normal"}
    for entry in entries:
        top, patient, _name = entry.path.split("/")
        assert (entry.label, entry.patient_id) == (labels[top], patient)
        assert entry.extra["series_uid"] == pydicom.dcmread(folder / entry.path).SeriesInstanceUID


@needs_portal
def test_the_real_index_rows_by_position_and_the_sample_listing(tmp_path: Path) -> None:
    """Index.csv's Label Index skips 43, so row position (not the column) indexes the arrays; both arrays have a
    row per Index row; the sample listing's folders are the three the parser knows."""
    with open(REAL / "Index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    indices = [int(r["Label Index"]) for r in rows]
    assert 43 not in indices and len(rows) == 79 and indices[-1] == 79
    for name in ("Slice-level-labels.npy", "Slice-level-labels-updated-1.npy"):
        assert np.load(REAL / name).shape == (len(rows), 200)
    with open(REAL / "Sample data/FILE_LISTING.tsv", newline="") as handle:
        paths = [line.split("\t")[0] for line in handle][1:]
    folder = tmp_path / "fetched"
    for path in paths:
        relative = path.removeprefix("Sample data/")
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(b"")
    from covid19_images.sources.catalog.covid_ct_md import FOLDERS, slices_of
    from covid19_images.sources.parsing import SourceContext, list_files

    ctx = SourceContext(portal_spec(SOURCE), folder, list_files(folder))
    patients = slices_of(ctx)
    assert {p.split("/")[0] for p in patients} == set(FOLDERS)
    assert sum(len(files) for files in patients.values()) == len(paths)
