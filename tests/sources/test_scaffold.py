"""`covid19-images new-source` writes a source's whole home, and what it writes works: the
generated test passes and the new source syncs into the manifest through a mirror of its miniature."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from covid19_images.cli import main as cli
from covid19_images.manifest.build import read_manifest
from covid19_images.testing.mirrors import build_mirror, mirror_path
from tests.conftest import PROJECT, git, new_root

NAME = "hospital-x"
URL = "https://github.com/example/hospital-x.git"
HOME = "src/covid19_images/sources/catalog/hospital_x"
TEST = "tests/sources/catalog/test_hospital_x.py"


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project as a contributor's checkout has it: the package source, the test scaffolding, the registry."""
    root = tmp_path / "project"
    shutil.copytree(PROJECT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for relative in ("sources.yaml", "pyproject.toml", "tests/__init__.py", "tests/conftest.py"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT / relative, root / relative)
    for package in ("tests/sources", "tests/sources/catalog"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _python(project: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Python with the copy's package first on the path: the catalog it scans is the one new-source wrote to."""
    env = {key: value for key, value in os.environ.items() if key != "CI"}  # the copy has no ../shared next to it
    env["PYTHONPATH"] = str(project / "src")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _scaffold(project: Path) -> None:
    result = CliRunner().invoke(cli, ["new-source", NAME, URL, "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert TEST in result.output


def test_new_source_writes_exactly_the_home_of_a_source(project_copy: Path) -> None:
    before = _files(project_copy)
    registry_before = (project_copy / "sources.yaml").read_text()
    _scaffold(project_copy)
    assert sorted(_files(project_copy) - before) == sorted(
        [
            f"{HOME}/__init__.py",
            f"{HOME}/source.yaml",
            f"{HOME}/miniature/metadata.csv",
            f"{HOME}/miniature/images/p1-a.png",
            f"{HOME}/miniature/images/p2-a.png",
            TEST,
        ]
    )
    assert (project_copy / "sources.yaml").read_text() == registry_before.rstrip("\n") + f"\n  - {NAME}\n"


def test_a_scaffolded_source_syncs_and_its_generated_test_passes(project_copy: Path, tmp_path: Path) -> None:
    _scaffold(project_copy)
    mirror = tmp_path / "mirror"
    build_mirror(mirror_path(mirror, URL), [project_copy / HOME / "miniature"])
    root = new_root(tmp_path / "root", [NAME])

    synced = _python(
        project_copy,
        *("-c", "from covid19_images.cli import main; main()"),
        *("sync", "--root", str(root), "--mirror", str(mirror), "--quiet"),
        cwd=tmp_path,
    )
    assert synced.returncode == 0, synced.stdout + synced.stderr
    manifest = read_manifest(root)
    rows = manifest[manifest["source"] == NAME].set_index("path")
    assert rows["label"].to_dict() == {
        f"datasets/{NAME}/images/p1-a.png": "covid-19",
        f"datasets/{NAME}/images/p2-a.png": "normal",
    }
    assert set(rows["format"]) == {"png"} and set(rows["width"]) == {"32"}
    assert f"path = datasets/{NAME}" in (root / ".gitmodules").read_text()
    assert git("ls-files", "-s", f"datasets/{NAME}", cwd=root).startswith("160000 ")

    tested = _python(project_copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST, cwd=project_copy)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "2 passed" in tested.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["new-source", "ieee8023-covid-chestxray", "https://github.com/a/b.git"],
        ["new-source", "Bad Name", "https://github.com/a/b.git"],
        ["new-source", "evil", "ext::sh -c id"],
        ["new-source", "evil", "https://github.com/a/b.git", "--branch", "--upload-pack=x"],
    ],
)
def test_new_source_refuses_bad_input(project_copy: Path, args: list[str]) -> None:
    before = _files(project_copy)
    registry_before = (project_copy / "sources.yaml").read_text()
    result = CliRunner().invoke(cli, [*args, "--root", str(project_copy)])
    assert result.exit_code != 0
    assert (project_copy / "sources.yaml").read_text() == registry_before
    assert _files(project_copy) == before


def test_new_source_refuses_a_data_root_that_is_not_a_checkout_of_the_project(tmp_path: Path) -> None:
    """A data root (sources.yaml, datasets/, manifests/, no src/) would get a parser nothing imports."""
    data_root = new_root(tmp_path / "data", ["figure1-xray"])
    before = _files(data_root)
    result = CliRunner().invoke(cli, ["new-source", NAME, URL, "--root", str(data_root)])
    assert result.exit_code == 1
    assert "is not a checkout of the covid19-images project" in result.output
    assert "run it in a clone of the project" in result.output
    assert _files(data_root) == before
    status = CliRunner().invoke(cli, ["status", "--root", str(data_root)])
    assert status.exit_code == 0, status.output
