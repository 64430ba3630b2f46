"""The Croissant document states the confounding ``report`` finds, and stays deterministic."""

from __future__ import annotations

import pandas as pd
import pytest

from covid19_images.core.schema import MANIFEST_COLUMNS
from covid19_images.export import croissant
from covid19_images.quality.report import build_report


def _manifest(rows: list[tuple[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame({column: [""] * len(rows) for column in MANIFEST_COLUMNS})
    frame["source"] = [s for s, _ in rows]
    frame["label"] = [label for _, label in rows]
    frame["image_id"] = [f"{i:016x}" for i in range(len(rows))]
    frame["patient_id"] = [f"{s}:{i}" for i, (s, _) in enumerate(rows)]
    frame["modality"], frame["license"], frame["split"] = "xray", "CC0-1.0", "train"
    return frame


def _document(manifest: pd.DataFrame) -> dict:
    return croissant.document(
        name="t",
        description="t",
        version="2026.12",
        files=[],
        record_sets=[],
        manifest=manifest,
        citations={"paediatric": "Kermany D. 2018."},
        cite_as="@misc{t}",
    )


def test_rai_biases_list_exactly_the_reports_confounding_warnings() -> None:
    # every normal image from one (paediatric) source: report warns; the document must say so
    confounded = _manifest([("paediatric", "normal")] * 40 + [("adult", "covid-19")] * 40)
    warnings = build_report(None, confounded, privacy=False)["warnings"]
    assert any("paediatric" in w for w in warnings)
    biases = _document(confounded)["rai:dataBiases"]
    assert biases[0] == croissant.KNOWN_BIASES
    assert biases[1:] == warnings
    mixed = _manifest(
        [("paediatric", "normal"), ("paediatric", "covid-19"), ("adult", "normal"), ("adult", "covid-19")] * 20
    )
    assert build_report(None, mixed, privacy=False)["warnings"] == []
    assert _document(mixed)["rai:dataBiases"] == [croissant.KNOWN_BIASES]


def test_the_document_is_deterministic_and_carries_licences_citations_and_the_warning() -> None:
    manifest = _manifest([("adult", "covid-19")] * 3)
    first, second = croissant.to_bytes(_document(manifest)), croissant.to_bytes(_document(manifest.copy()))
    assert first == second
    doc = _document(manifest)
    assert doc["license"] == ["CC0-1.0"]
    assert doc["citation"] == ["paediatric: Kermany D. 2018."]
    assert "a negative scan means nothing" in doc["rai:dataLimitations"][0]


@pytest.mark.parametrize("column", MANIFEST_COLUMNS)
def test_every_manifest_column_is_a_described_field(column: str) -> None:
    record_set = croissant.rows_record_set("images", "manifest.csv", MANIFEST_COLUMNS, "rows")
    field = next(f for f in record_set["field"] if f["name"] == column)
    assert field["description"] != column
    assert field["source"] == {"fileObject": {"@id": "manifest.csv"}, "extract": {"column": column}}
