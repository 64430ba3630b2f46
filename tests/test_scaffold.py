"""`covid19-images new-source` writes a parser, a registry entry and a test that work together."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from covid19_images.cli import main as cli
from covid19_images.core.schema import Entry, Problem
from covid19_images.sources.parsing import SourceContext, list_files
from covid19_images.sources.registry import load_registry

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src" / "covid19_images" / "sources" / "parsers").mkdir(parents=True)
    (root / "tests").mkdir()
    shutil.copyfile(PROJECT / "sources.yaml", root / "sources.yaml")
    return root


def test_new_source_scaffold_produces_a_working_parser(project_copy: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["new-source", "hospital-x", "https://github.com/example/hospital-x.git", "--root", str(project_copy)],
    )
    assert result.exit_code == 0, result.output
    spec = load_registry(project_copy)["hospital-x"]
    assert spec.pending and spec.parser == "hospital_x" and spec.path == "datasets/hospital-x"
    parser_file = project_copy / "src/covid19_images/sources/parsers/hospital_x.py"
    module_spec = importlib.util.spec_from_file_location("covid19_images.sources.parsers.hospital_x", parser_file)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    try:
        module_spec.loader.exec_module(module)
        upstream = tmp_path / "upstream"
        upstream.mkdir()
        Image.new("L", (32, 32), 9).save(upstream / "x.png")
        (upstream / "metadata.csv").write_text("patientid,filename,finding\n7,x.png,COVID-19\n8,gone.png,todo\n")
        ctx = SourceContext(spec, upstream, list_files(upstream))
        items = [*module.parse(ctx), *ctx.problems]
    finally:
        del sys.modules[module_spec.name]
    entries = [i for i in items if isinstance(i, Entry)]
    assert [(e.path, e.label, e.patient_id) for e in entries] == [("x.png", "covid-19", "7")]
    assert any(isinstance(i, Problem) and "gone.png" in str(i) for i in items)
    compile((project_copy / "tests/test_source_hospital_x.py").read_text(), "generated test", "exec")


@pytest.mark.parametrize(
    "args",
    [
        ["new-source", "ieee8023-covid-chestxray", "https://github.com/a/b.git"],
        ["new-source", "Bad Name", "https://github.com/a/b.git"],
        ["new-source", "evil", "ext::sh -c id"],
    ],
)
def test_new_source_refuses_bad_input(project_copy: Path, args: list[str]) -> None:
    before = (project_copy / "sources.yaml").read_text()
    result = CliRunner().invoke(cli, [*args, "--root", str(project_copy)])
    assert result.exit_code != 0
    assert (project_copy / "sources.yaml").read_text() == before
    assert not list((project_copy / "src/covid19_images/sources/parsers").iterdir())
