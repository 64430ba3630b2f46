"""``covid19-images status``: "ahead" says when it was measured; a bare clone is told what to run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from covid19_images.cli import main as cli
from covid19_images.sync.run import sync
from covid19_images.testing.mirrors import build_mirror, mirror_path

pytestmark = pytest.mark.upstream
IEEE = "ieee8023-covid-chestxray"
OLD = "ieee8023-covid-chestxray-dataset__pinned-548bb58"
NEW = "ieee8023-covid-chestxray-dataset"


def _ahead(output: str) -> tuple[str, str]:
    lines = output.splitlines()
    header, row = lines[0], next(line for line in lines if line.startswith(IEEE))
    column = header.index("ahead")
    return header[column:].split("  ")[0], row[column:].split()[0]


def test_ahead_is_as_of_the_last_fetch_until_status_fetches(make_root, registry, shared: Path, tmp_path: Path) -> None:
    mirror_root = tmp_path / "mirror"
    bare = mirror_path(mirror_root, registry[IEEE].url)
    build_mirror(bare, [shared / OLD])
    root = make_root([IEEE])
    sync(root, mirror=mirror_root, progress=False)
    commits = build_mirror(bare, [shared / OLD, shared / NEW])  # the upstream moves on
    moved = subprocess.run(
        ["git", "-C", str(bare), "rev-list", "--count", f"{commits[0]}..{commits[-1]}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert moved == "1"
    runner = CliRunner()
    quiet = runner.invoke(cli, ["status", "--root", str(root)])
    assert quiet.exit_code == 0, quiet.output
    assert _ahead(quiet.output) == ("ahead (last fetch)", "0")
    assert "status --fetch" in quiet.output
    fetched = runner.invoke(cli, ["status", "--root", str(root), "--fetch", "--mirror", str(mirror_root)])
    assert fetched.exit_code == 0, fetched.output
    assert _ahead(fetched.output) == ("ahead", moved)


def test_a_fetch_that_fails_is_named_not_counted(make_root, registry, shared: Path, tmp_path: Path) -> None:
    mirror_root = tmp_path / "mirror"
    build_mirror(mirror_path(mirror_root, registry[IEEE].url), [shared / OLD])
    root = make_root([IEEE])
    sync(root, mirror=mirror_root, progress=False)
    result = CliRunner().invoke(cli, ["status", "--root", str(root), "--fetch", "--mirror", str(tmp_path / "empty")])
    assert result.exit_code == 0, result.output
    assert _ahead(result.output)[1] == "?"
    assert f"{IEEE}: cannot fetch:" in result.output


def test_a_clone_with_no_source_checked_out_is_told_what_to_run(make_root) -> None:
    root = make_root([IEEE, "zhanglab-pediatric-xray"])
    result = CliRunner().invoke(cli, ["status", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "No source is checked out" in result.output
    assert "make demo" in result.output and "git submodule update --init" in result.output
