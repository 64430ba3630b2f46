"""The one rule that picks the data root (core/roots.py), on real folders and real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from covid19_images.core.roots import DEMO_POINTER, ROOT_ENV, locate_root

PROJECT = Path(__file__).resolve().parents[2]


def _root(folder: Path, *, manifest: bool = False) -> Path:
    (folder / "datasets" / "some-source").mkdir(parents=True)  # an uninitialised submodule: empty
    (folder / "sources.yaml").write_text("sources: []\n")
    if manifest:
        (folder / "manifests").mkdir()
        (folder / "manifests" / "manifest.csv").write_text("image_id\n")
    return folder


@pytest.fixture
def clone_with_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.delenv(ROOT_ENV, raising=False)
    clone = _root(tmp_path / "clone")
    demo = _root(clone / "build" / "demo" / "root", manifest=True)
    (clone / DEMO_POINTER).write_text(f"{demo}\n")
    return clone, demo


def test_a_clone_without_data_uses_its_demo_root_from_anywhere_inside(clone_with_demo, monkeypatch) -> None:
    clone, demo = clone_with_demo
    (clone / "notebooks").mkdir()
    for where in (clone, clone / "notebooks"):
        monkeypatch.chdir(where)
        choice = locate_root()
        assert (choice.path, choice.origin) == (demo.resolve(), "demo")
        assert str(demo.resolve()) in choice.notice() and ROOT_ENV in choice.notice()


def test_argument_then_environment_win_over_the_demo(clone_with_demo, monkeypatch, tmp_path: Path) -> None:
    clone, _demo = clone_with_demo
    monkeypatch.chdir(clone)
    other = _root(tmp_path / "other", manifest=True)
    monkeypatch.setenv(ROOT_ENV, str(other))
    assert locate_root().path == other.resolve() and locate_root().notice() is None
    assert locate_root(clone).path == clone.resolve()


def test_a_clone_with_data_is_its_own_root(clone_with_demo, monkeypatch) -> None:
    clone, _demo = clone_with_demo
    monkeypatch.chdir(clone)
    (clone / "datasets" / "some-source" / "metadata.csv").write_text("x\n")  # a checked-out source
    assert (locate_root().path, locate_root().origin) == (clone.resolve(), "found")


def test_a_pointer_to_a_deleted_demo_is_ignored(clone_with_demo, monkeypatch) -> None:
    clone, demo = clone_with_demo
    (demo / "manifests" / "manifest.csv").unlink()
    monkeypatch.chdir(clone)
    assert locate_root().path == clone.resolve()


def test_inside_the_demo_root_it_is_found_directly(clone_with_demo, monkeypatch) -> None:
    _clone, demo = clone_with_demo
    monkeypatch.chdir(demo / "manifests")
    assert (locate_root().path, locate_root().origin) == (demo.resolve(), "found")


def test_the_cli_says_once_on_stderr_that_it_uses_the_demo_root(clone_with_demo) -> None:
    clone, demo = clone_with_demo
    env = {k: v for k, v in os.environ.items() if k != ROOT_ENV}
    env["PYTHONPATH"] = str(PROJECT / "src")
    code = "from covid19_images.core.roots import find_root; print(find_root()); print(find_root())"
    done = subprocess.run([sys.executable, "-c", code], cwd=clone, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == [str(demo.resolve())] * 2
    assert done.stderr.count("using the demo root") == 1, done.stderr


def test_the_rule_is_documented_where_users_look() -> None:
    import pydoc

    from click.testing import CliRunner

    from covid19_images import load_covid_ct, load_covid_ultrasound, load_covid_xray, load_manifest
    from covid19_images.cli import main as cli

    for function in (load_covid_xray, load_covid_ct, load_covid_ultrasound, load_manifest):
        text = pydoc.render_doc(function, renderer=pydoc.plaintext)
        assert ROOT_ENV in text and DEMO_POINTER in text and "sources.yaml" in text, function.__name__
    runner = CliRunner()
    for args in (["--help"], ["report", "--help"], ["sync", "--help"], ["export", "--help"]):
        text = " ".join(runner.invoke(cli, args).output.split())
        assert ROOT_ENV in text and DEMO_POINTER in text, args
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert ROOT_ENV in readme and DEMO_POINTER in readme
