"""The command line turns user errors into one-line messages, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import covid19_images.sync.run as sync_run
from covid19_images.cli import main as cli
from covid19_images.manifest.build import MANIFEST_FILE

IEEE = "ieee8023-covid-chestxray"


def test_unknown_source_is_a_one_line_user_error(make_root) -> None:
    root = make_root([IEEE])
    result = CliRunner().invoke(cli, ["sync", "no-such-source", "--root", str(root), "--offline", "--quiet"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: unknown source(s) no-such-source; known: {IEEE}"]
    assert not (root / MANIFEST_FILE).exists()


def test_an_internal_key_error_is_not_disguised_as_a_user_error(make_root, monkeypatch) -> None:
    """A bug inside sync (here: the build raising KeyError) must surface with its traceback."""
    root = make_root([IEEE])

    def broken_build(*args: object, **kwargs: object) -> None:
        raise KeyError("internal-column")

    monkeypatch.setattr(sync_run, "build_manifest", broken_build)
    with pytest.raises(KeyError, match="internal-column"):
        CliRunner().invoke(cli, ["sync", "--root", str(root), "--offline", "--quiet"], catch_exceptions=False)


def test_known_source_names_pass_the_check(make_root, monkeypatch) -> None:
    """The same guard lets a registered name through (the build is reached)."""
    root = make_root([IEEE])
    reached: list[Path] = []

    def stop_at_build(root_arg: Path, *args: object, **kwargs: object) -> None:
        reached.append(root_arg)
        raise KeyError("reached the build")

    monkeypatch.setattr(sync_run, "build_manifest", stop_at_build)
    with pytest.raises(KeyError):
        CliRunner().invoke(cli, ["sync", IEEE, "--root", str(root), "--offline", "--quiet"], catch_exceptions=False)
    assert reached == [root.resolve()]
