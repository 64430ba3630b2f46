"""Sync treats a portal source like any other: lock digest as its commit, rows kept when content is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from covid19_images.cli import main
from covid19_images.manifest.build import read_manifest
from covid19_images.sources.portal.fetch import downloads_of
from covid19_images.sources.portal.lock import LockError, current_digest, parse_lock, read_lock
from covid19_images.sources.portal.state import source_dir
from covid19_images.sync.portals import entries_for, select_rows
from covid19_images.sync.run import sync
from covid19_images.testing.miniature import miniature_dir
from covid19_images.testing.portal_miniatures import miniature_files
from tests.sources.portal.conftest import ZENODO_SOURCE


def _cli(root: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--root", str(root)], catch_exceptions=False)


def test_update_portal_pins_fetches_and_summarises(portal_root: Path) -> None:
    result = _cli(portal_root, "sync", "--update-portal", ZENODO_SOURCE, "--quiet")
    assert result.exit_code == 0, result.output
    digest = current_digest(portal_root, ZENODO_SOURCE)
    volumes = [n for n in miniature_files(miniature_dir(ZENODO_SOURCE)) if n.startswith("ct_scans/")]
    assert f"{ZENODO_SOURCE}: none→{digest[:12]}, +{len(volumes)} images" in result.output
    manifest = read_manifest(portal_root)
    rows = manifest[manifest["source"] == ZENODO_SOURCE]
    assert sorted(rows["path"]) == sorted(f"datasets/{ZENODO_SOURCE}/{v}" for v in volumes)
    assert set(rows["source_commit"]) == {digest}
    assert set(rows["label"]) == {"covid-19"}


def test_a_clone_without_the_content_keeps_the_committed_rows(portal_root: Path) -> None:
    assert _cli(portal_root, "sync", "--update-portal", ZENODO_SOURCE, "--quiet").exit_code == 0
    before = read_manifest(portal_root)
    shutil.rmtree(source_dir(portal_root, ZENODO_SOURCE))  # a fresh clone: the lock and manifest, no content
    report = sync(portal_root, offline=True, progress=False)
    after = read_manifest(portal_root)
    assert after[after["source"] == ZENODO_SOURCE].equals(before[before["source"] == ZENODO_SOURCE])
    messages = [p.message for p in report.build.problems if p.source == ZENODO_SOURCE]
    assert any(
        f"not fetched; run `covid19-images fetch {ZENODO_SOURCE}`" in m and "kept its 2 rows" in m for m in messages
    )


def test_without_a_lock_sync_says_who_pins_it(portal_root: Path) -> None:
    report = sync(portal_root, offline=True, progress=False)
    messages = [p.message for p in report.build.problems if p.source == ZENODO_SOURCE]
    assert messages == [f"no lock yet; a maintainer pins it with `covid19-images sync --update-portal {ZENODO_SOURCE}`"]


def test_check_portals_names_a_newer_version(portal_root: Path, server) -> None:
    assert _cli(portal_root, "sync", "--update-portal", ZENODO_SOURCE, "--quiet").exit_code == 0
    record = server.state.content["/zenodo.org/api/records/3757476/versions/latest"]
    server.state.content["/zenodo.org/api/records/3757476/versions/latest"] = record.replace(b"3757476", b"9999999")
    result = _cli(portal_root, "sync", "--check-portals")
    assert f"{ZENODO_SOURCE}: pinned 3757476, newest 9999999" in result.output


def test_fetch_only_gets_the_files_a_selection_needs(portal_root: Path, server) -> None:
    assert _cli(portal_root, "sync", "--update-portal", ZENODO_SOURCE, "--quiet").exit_code == 0
    lock = read_lock(portal_root, ZENODO_SOURCE)
    rows = select_rows(portal_root, [f"source={ZENODO_SOURCE}", "patient_id=covid19-ct-seg:coronacases_org_001"])
    assert len(rows) == 1
    from covid19_images.sources.registry import load_registry
    from covid19_images.sync.portals import _relatives

    spec = load_registry(portal_root)[ZENODO_SOURCE]
    wanted = entries_for(spec, lock, _relatives(rows, ZENODO_SOURCE))
    # the volume's zip and the three mask zips its extra names: every entry here
    assert wanted == {e.path for e in lock.entries}
    only_volume = entries_for(spec, lock, {"ct_scans/coronacases_org_001.nii.gz"})
    assert only_volume == {"COVID-19-CT-Seg_20cases.zip"}
    shutil.rmtree(source_dir(portal_root, ZENODO_SOURCE))
    shutil.rmtree(downloads_of(portal_root, ZENODO_SOURCE))
    dry = _cli(portal_root, "fetch", ZENODO_SOURCE, "--only", "modality=xray", "--dry-run")
    assert dry.exit_code == 0 and f"{ZENODO_SOURCE}: the selection needs none of its files" in dry.output
    dry = _cli(portal_root, "fetch", ZENODO_SOURCE, "--dry-run")
    assert f"{ZENODO_SOURCE}: 4 file(s), {lock.total_size} bytes to download" in dry.output
    assert not source_dir(portal_root, ZENODO_SOURCE).exists()


def test_fetch_command_exit_code_and_message(portal_root: Path, server) -> None:
    assert _cli(portal_root, "sync", "--update-portal", ZENODO_SOURCE, "--quiet").exit_code == 0
    shutil.rmtree(source_dir(portal_root, ZENODO_SOURCE))
    shutil.rmtree(downloads_of(portal_root, ZENODO_SOURCE))
    server.state.statuses["/zenodo.org/api/records/3757476/files/Infection_Mask.zip/content"] = [404] * 10
    failed = CliRunner().invoke(main, ["fetch", ZENODO_SOURCE, "--root", str(portal_root), "--quiet"])
    assert failed.exit_code == 1 and "Infection_Mask.zip: not found (404)" in failed.output
    server.state.statuses.clear()
    done = _cli(portal_root, "fetch", ZENODO_SOURCE, "--quiet")
    assert done.exit_code == 0 and "fetched" in done.output


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("a.zip\t12\t\tnot-a-hash\thttps://x", "sha256 must be 64 hex digits"),
        ("../a.zip\t12\t\t" + "0" * 64 + "\thttps://x", "climbs out"),
        ("a.zip\ttwelve\t\t" + "0" * 64 + "\thttps://x", "is not a number"),
        ("a.zip\t12\t" + "0" * 64 + "\thttps://x", "expected 5 tab-separated fields"),
    ],
)
def test_a_malformed_lock_line_is_named(line: str, says: str) -> None:
    data = f"# source: s\npath\tsize\tportal_hash\tsha256\tlocator\n{line}\n".encode()
    with pytest.raises(LockError, match=rf"locks/s.lock.tsv:3: .*{says}"):
        parse_lock(data, "locks/s.lock.tsv")


def test_verify_treats_fetched_files_as_upstream_files_and_names_a_stray_one(portal_root: Path) -> None:
    from covid19_images.quality.verify import verify

    assert _cli(portal_root, "sync", "--update-portal", ZENODO_SOURCE, "--quiet").exit_code == 0
    result = verify(portal_root, progress=False)
    unused = {item["path"] for item in result.upstream_unused if item["source"] == ZENODO_SOURCE}
    assert unused and all("/lung_mask/" in p or "infection_mask/" in p for p in unused)  # masks: in no row
    assert not [item for item in result.unreferenced if item["source"] == ZENODO_SOURCE]
    stray = source_dir(portal_root, ZENODO_SOURCE) / "ct_scans" / "stray.nii.gz"
    shutil.copyfile(next(iter(sorted((source_dir(portal_root, ZENODO_SOURCE) / "lung_mask").iterdir()))), stray)
    result = verify(portal_root, progress=False)
    assert [item["path"] for item in result.unreferenced] == [f"datasets/{ZENODO_SOURCE}/ct_scans/stray.nii.gz"]
