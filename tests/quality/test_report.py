"""``covid19-images report``: counts, confounding warnings, split checks, privacy, JSON and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from covid19_images.cli import main
from covid19_images.manifest.build import read_manifest
from covid19_images.quality.report import DOMINANCE, MIN_ROWS, age_group, build_report, cramers_v, render_text
from tests.conftest import build_synced_root

SOURCES = ("ieee8023-covid-chestxray", "zhanglab-pediatric-xray", "nih-chestxray14-sample")


def test_cramers_v_is_one_for_a_perfect_confound_and_zero_for_independence() -> None:
    perfect = pd.DataFrame({"covid-19": [30, 0], "normal": [0, 50]}, index=["a", "b"])
    independent = pd.DataFrame({"covid-19": [10, 20], "normal": [30, 60]}, index=["a", "b"])
    assert cramers_v(perfect) == pytest.approx(1.0)
    assert cramers_v(independent) == pytest.approx(0.0, abs=1e-12)
    assert cramers_v(pd.DataFrame({"x": [3]}, index=["a"])) is None


def test_age_group_uses_age_then_paediatric_flag() -> None:
    assert age_group("4", {}) == "child (<18)"
    assert age_group("40", {"paediatric": True}) == "adult (18-64)"
    assert age_group("", {"paediatric": True}) == "child (<18)"
    assert age_group("70", {}) == "older (65+)"
    assert age_group("", {}) == ""


@pytest.fixture(scope="module")
def xray_root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("report"), mirrors, SOURCES)


def expected_source_warnings(manifest: pd.DataFrame) -> set[tuple[str, str]]:
    """(label, source) pairs where one source supplies >= 90 % of a label, computed here with pandas."""
    xray = manifest[(manifest["modality"] == "xray") & (manifest["label"] != "unknown")]
    table = pd.crosstab(xray["label"], xray["source"])
    found = set()
    for label, counts in table.iterrows():
        if counts.sum() >= MIN_ROWS and counts.max() / counts.sum() >= DOMINANCE:
            found.add((str(label), str(counts.idxmax())))
    return found


@pytest.mark.upstream
def test_confounding_warnings_fire_on_real_xray_sources(xray_root: Path) -> None:
    manifest = read_manifest(xray_root)
    report = build_report(xray_root, manifest)
    expected = expected_source_warnings(manifest)
    assert ("covid-19", "ieee8023-covid-chestxray") in expected, "the samples' COVID-19 X-rays are all ieee8023"
    warnings = report["confounding"]["xray"]["warnings"]
    for label, source in expected:
        assert any(f"label {label!r}" in w and source in w for w in warnings), (label, source, warnings)
    source_warnings = [w for w in warnings if "come from" in w]
    assert len(source_warnings) == len(expected)
    # every normal X-ray with a known age is paediatric (Zhang Lab) while the other labels are mostly adult
    assert any("label 'normal'" in w and "child" in w for w in warnings), warnings
    v = report["confounding"]["xray"]["cramers_v"]
    assert v is not None and 0.5 < v <= 1.0
    text = render_text(report)
    assert "WARNING [xray] label 'covid-19'" in text


@pytest.mark.upstream
def test_report_counts_splits_patients_and_licences(xray_root: Path) -> None:
    manifest = read_manifest(xray_root)
    report = build_report(xray_root, manifest)
    assert report["overall"]["images"] == len(manifest)
    for source, frame in manifest.groupby("source"):
        section = report["sources"][source]
        assert section["images"] == len(frame)
        assert section["patients"] == frame["patient_id"].nunique()
        assert sum(section["label"].values()) == len(frame)
    assert report["splits"]["groups_across_splits"] == 0
    assert sum(report["splits"]["sizes"].values()) == len(manifest)
    unknown = manifest[manifest["license"] == "unknown"]
    assert report["licenses"]["unknown_images"] == len(unknown)
    assert report["licenses"]["unknown_paths"] == sorted(unknown["path"])
    assert len(unknown) > 0, "ieee8023 leaves some licences blank"
    # Zhang Lab ids come from file names, ieee8023 from metadata: every row has a patient id except the
    # ieee8023 images that no metadata.csv line names (indexed as unknown since issue 14)
    ieee = xray_root / "datasets" / "ieee8023-covid-chestxray"
    metadata = (ieee / "metadata.csv").read_text(encoding="utf-8", errors="replace")
    orphans = [p for p in (ieee / "images").iterdir() if p.name not in metadata]
    ieee_rows = int((manifest["source"] == "ieee8023-covid-chestxray").sum())
    expected = {"ieee8023-covid-chestxray": {"rows_without": len(orphans), "rows": ieee_rows}} if orphans else {}
    assert report["patient_ids"]["sources_without_patient_ids"] == expected


def test_sources_without_patient_ids_and_straddling_groups_are_reported() -> None:
    manifest = pd.DataFrame(
        {
            "image_id": ["1", "2", "3"],
            "source": ["d", "d", "e"],
            "path": ["datasets/d/a.png", "datasets/d/b.png", "datasets/e/c.png"],
            "patient_id": ["d:file:a.png", "d:file:b.png", "e:p1"],
            "modality": "xray",
            "view": "PA",
            "label": ["covid-19", "normal", "normal"],
            "age": "",
            "extra": "",
            "license": ["unknown", "CC0-1.0", "CC0-1.0"],
            "official_split": "",
            "sha256": ["x", "y", "z"],
            "pixel_sha256": ["x", "y", "z"],
            "phash": "",
            "dup_group": "",
            "split_group": ["g1", "g1", "g2"],
            "split": ["train", "test", "train"],
        }
    )
    report = build_report(None, manifest)
    assert report["patient_ids"]["sources_without_patient_ids"] == {"d": {"rows_without": 2, "rows": 2}}
    assert report["splits"]["groups_across_splits"] == 1
    assert any(w.startswith("ERROR 1 split group") for w in report["warnings"])
    assert "d: 2 of 2 images" in render_text(report)


@pytest.mark.upstream
def test_cli_report_text_json_plots_and_privacy(xray_root: Path, tmp_path: Path, monkeypatch) -> None:
    from covid19_images.manifest import privacy

    finding = {"path": "datasets/x/IM0001", "tags": "PatientName,PatientBirthDate"}
    monkeypatch.setattr(privacy, "scan_identifying", lambda root, manifest: [finding])
    runner = CliRunner()
    text = runner.invoke(main, ["report", "--root", str(xray_root)])
    assert text.exit_code == 0, text.output
    assert "datasets/x/IM0001: PatientName,PatientBirthDate" in text.output
    assert "groups across splits: 0 (must be 0)" in text.output

    as_json = runner.invoke(main, ["report", "--root", str(xray_root), "--json", "--plots", str(tmp_path / "plots")])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["privacy"] == [finding]
    assert data["overall"]["images"] == len(read_manifest(xray_root))
    plots = [Path(p) for p in data["plots"]]
    assert {p.name for p in plots} >= {"labels_by_source.png", "split_sizes.png", "source_label_confounding.png"}
    for path in plots:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 300
            assert np.asarray(image.convert("L")).std() > 5, f"{path.name} is blank"


def test_cli_report_without_manifest_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    result = CliRunner().invoke(main, ["report", "--root", str(tmp_path)])
    assert result.exit_code != 0 and "no manifest" in result.output


def test_confounding_heatmap_has_a_colour_bar_and_its_numbers_match_its_colours() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from covid19_images.quality.report.plots import confounding_heatmap

    table = pd.DataFrame({"covid-19": [30, 10], "normal": [0, 20]}, index=["source-a", "source-b"])
    fig, ax = plt.subplots()
    try:
        bar = confounding_heatmap(fig, ax, table, "xray")
        assert bar.ax in fig.axes and "share" in bar.ax.get_ylabel()
        cells = {text.get_text() for text in ax.texts}
        # 30 of the 40 covid-19 images come from source-a: 75 %; every normal image from source-b
        assert cells == {"30\n(75%)", "10\n(25%)", "0\n(0%)", "20\n(100%)"}
        colours = ax.images[0].get_array()
        assert colours[0, 0] == pytest.approx(0.75) and colours[1, 1] == pytest.approx(1.0)
    finally:
        plt.close(fig)
