"""A release pins a portal source by its lock, as it pins a git source by its gitlink (issue 25 on issue 21)."""

from __future__ import annotations

import shutil
from pathlib import Path

import git
import pytest
from click.testing import CliRunner

from covid19_images.cli import main
from covid19_images.sources.portal.lock import current_digest, lock_path
from covid19_images.sources.portal.state import source_dir
from covid19_images.sync.versions import VersionMismatch, require_version_checkouts, version_status
from tests.sources.portal.conftest import ZENODO_SOURCE


def _cli(root: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--root", str(root)], catch_exceptions=False)


def _pinned_and_tagged(root: Path, tag: str) -> str:
    assert _cli(root, "sync", "--update-portal", ZENODO_SOURCE, "--quiet").exit_code == 0
    repo = git.Repo(root)
    repo.git.add(A=True)
    repo.index.commit("pin covid19-ct-seg")
    repo.create_tag(tag, message=f"release {tag}")
    return current_digest(root, ZENODO_SOURCE)


def _portal_row(root: Path, version: str):
    (row,) = [p for p in version_status(root, version) if p.source == ZENODO_SOURCE]
    return row


def test_a_version_pins_the_lock_and_an_unfetched_source_is_refused_with_the_fetch_command(portal_root: Path) -> None:
    digest = _pinned_and_tagged(portal_root, "2026.11")
    row = _portal_row(portal_root, "2026.11")
    assert (row.kind, row.version_pin, row.checked_out, row.matches) == ("portal", digest, digest, True)
    require_version_checkouts(portal_root, "2026.11", {ZENODO_SOURCE})  # fetched from the pinned lock: served

    shutil.rmtree(source_dir(portal_root, ZENODO_SOURCE))  # a clone that has not fetched it
    row = _portal_row(portal_root, "2026.11")
    assert not row.matches and row.describe() == "not fetched"
    fetch = f"covid19-images fetch {ZENODO_SOURCE} --root {portal_root}"
    assert row.command(portal_root) == fetch
    with pytest.raises(VersionMismatch, match=f"{ZENODO_SOURCE}: not fetched; run: {fetch}"):
        require_version_checkouts(portal_root, "2026.11", {ZENODO_SOURCE})
    status = _cli(portal_root, "status", "--version", "2026.11")
    assert fetch in status.output, status.output

    assert _cli(portal_root, "fetch", ZENODO_SOURCE).exit_code == 0  # the command it named
    assert _portal_row(portal_root, "2026.11").matches


def test_a_lock_moved_since_the_version_names_the_lock_to_restore(portal_root: Path) -> None:
    digest = _pinned_and_tagged(portal_root, "2026.11")
    path = lock_path(portal_root, ZENODO_SOURCE)
    path.write_bytes(path.read_bytes().replace(b"# version:", b"# note: moved\n# version:", 1))
    assert current_digest(portal_root, ZENODO_SOURCE) != digest
    # the fetched folder was built from the version's lock: still what the version pins
    assert _portal_row(portal_root, "2026.11").matches
    shutil.rmtree(source_dir(portal_root, ZENODO_SOURCE))
    row = _portal_row(portal_root, "2026.11")
    lock = f"manifests/locks/{ZENODO_SOURCE}.lock.tsv"
    assert row.command(portal_root) == (
        f"git -C {portal_root} checkout 2026.11 -- {lock} && covid19-images fetch {ZENODO_SOURCE} --root {portal_root}"
    )
