"""fetch against a real HTTP server on 127.0.0.1 speaking Zenodo's and Kaggle's calls (point 9 of issue 21)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import filelock
import pytest

from covid19_images.sources.portal.fetch import ChangedUpstream, downloads_of, fetch_source, git_dir, plan
from covid19_images.sources.portal.http import PortalError
from covid19_images.sources.portal.lock import read_lock
from covid19_images.sources.portal.mirror import MirrorError, UrlRewriter
from covid19_images.sources.portal.state import MARKER, presence, source_dir
from covid19_images.sources.portal.update import update_lock
from covid19_images.testing.miniature import miniature_dir
from covid19_images.testing.portal_miniatures import miniature_files
from covid19_images.testing.portal_server import deterministic_zip
from tests.sources.portal.conftest import (
    KAGGLE_SECRET,
    KAGGLE_USER,
    ZENODO_SOURCE,
    big_payload,
    files_under,
    spec_of,
)

ZENODO_FILE = "/zenodo.org/api/records/3757476/files/Lung_Mask.zip/content"
BIG_FILE = "/zenodo.org/api/records/424242/files/volumes.zip/content"


def test_fetch_puts_the_upstream_layout_in_place_and_marks_it_complete(portal_root: Path, server) -> None:
    spec = spec_of(portal_root, ZENODO_SOURCE)
    update_lock(portal_root, spec, progress=False)
    result = fetch_source(portal_root, spec, progress=False)
    folder = source_dir(portal_root, ZENODO_SOURCE)
    fetched = files_under(folder)
    assert fetched.pop(MARKER)
    assert fetched == miniature_files(miniature_dir(ZENODO_SOURCE))
    assert result.fetched == 4 and presence(portal_root, ZENODO_SOURCE).complete
    assert f"/datasets/{ZENODO_SOURCE}/" in (git_dir(portal_root) / "info" / "exclude").read_text()
    # every request went to the loopback server through the root's insteadOf rules
    assert server.requests_for("/zenodo.org/api/records/3757476")


def test_changed_upstream_file_is_refused_by_name_and_the_old_content_kept(portal_root: Path, server) -> None:
    spec = spec_of(portal_root, ZENODO_SOURCE)
    lock = update_lock(portal_root, spec, progress=False)[1]
    ct_only = {e.path for e in lock.entries if e.path.startswith("COVID-19-CT-Seg")}
    fetch_source(portal_root, spec, wanted=ct_only, progress=False)
    (downloads_of(portal_root, ZENODO_SOURCE) / "Lung_Mask.zip").unlink()  # as on a machine that never had it
    folder = source_dir(portal_root, ZENODO_SOURCE)
    before = files_under(folder)
    server.state.content[ZENODO_FILE] = deterministic_zip({"coronacases_001.nii.gz": b"not the pinned mask"})
    with pytest.raises(ChangedUpstream, match=r"Lung_Mask\.zip .* is not the pinned file") as caught:
        fetch_source(portal_root, spec, progress=False)
    assert "--update-portal covid19-ct-seg" in str(caught.value)
    assert files_under(folder) == before  # the fetched copy is exactly what it was
    assert not (downloads_of(portal_root, ZENODO_SOURCE) / "Lung_Mask.zip").exists()
    assert not (downloads_of(portal_root, ZENODO_SOURCE) / "Lung_Mask.zip.part").exists()
    assert not presence(portal_root, ZENODO_SOURCE).complete


def test_a_download_cut_at_random_points_resumes(portal_root: Path, server) -> None:
    spec = spec_of(portal_root, "big-zenodo")
    update_lock(portal_root, spec, progress=False)
    entry = read_lock(portal_root, "big-zenodo").entries[0]
    (downloads_of(portal_root, "big-zenodo") / entry.path).unlink()  # download it again, cut this time
    rng = random.Random(21)
    cuts = [rng.randrange(1, 120_000) for _ in range(6)]
    server.state.cuts[BIG_FILE] = list(cuts)
    server.state.requests.clear()
    fetch_source(portal_root, spec, progress=False)
    folder = source_dir(portal_root, "big-zenodo")
    assert {k: v for k, v in files_under(folder).items() if k != MARKER} == {
        f"ct_scans/{name}": data for name, data in big_payload().items()
    }
    ranges = [r for _, r in server.requests_for("424242/files/volumes.zip")]
    offsets = [int(r.removeprefix("bytes=").rstrip("-")) for r in ranges if r]
    assert ranges[0] == "" and len(ranges) == len(cuts) + 1
    assert offsets == [sum(cuts[: i + 1]) for i in range(len(cuts))]  # each request resumed where the cut left it


def test_a_server_that_ignores_range_restarts_cleanly(portal_root: Path, server) -> None:
    spec = spec_of(portal_root, "big-zenodo")
    update_lock(portal_root, spec, progress=False)
    entry = read_lock(portal_root, "big-zenodo").entries[0]
    (downloads_of(portal_root, "big-zenodo") / entry.path).unlink()
    server.state.cuts[BIG_FILE] = [50_000]
    server.state.honour_range = False
    fetch_source(portal_root, spec, progress=False)
    assert presence(portal_root, "big-zenodo").complete


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (403, r"access denied \(403 Forbidden\).*accept the dataset's terms.*https://zenodo.org/records/3757476"),
        (404, r"not found \(404\).*--check-portals"),
        (429, r"rate limited \(429 Too Many Requests\) after 5 retries.*resumes"),
        (500, r"the portal failed \(500\) after 5 retries"),
    ],
)
def test_each_http_refusal_gives_its_message(portal_root: Path, server, status: int, says: str) -> None:
    spec = spec_of(portal_root, ZENODO_SOURCE)
    update_lock(portal_root, spec, progress=False)
    (downloads_of(portal_root, ZENODO_SOURCE) / "Lung_Mask.zip").unlink()
    server.state.statuses[ZENODO_FILE] = [status] * 20
    with pytest.raises(PortalError, match=says):
        fetch_source(portal_root, spec, progress=False)
    assert not source_dir(portal_root, ZENODO_SOURCE).exists()  # nothing extracted: not every file was verified


def test_a_transient_503_is_retried(portal_root: Path, server) -> None:
    spec = spec_of(portal_root, ZENODO_SOURCE)
    update_lock(portal_root, spec, progress=False)
    (downloads_of(portal_root, ZENODO_SOURCE) / "Lung_Mask.zip").unlink()
    server.state.statuses[ZENODO_FILE] = [503, 429, 502]
    fetch_source(portal_root, spec, progress=False)
    assert presence(portal_root, ZENODO_SOURCE).complete


def test_kaggle_credentials_are_used_never_shown(portal_root: Path, server, monkeypatch, capsys) -> None:
    spec = spec_of(portal_root, "kaggle-mini")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(portal_root / "no-such-folder"))
    with pytest.raises(PortalError, match=r"~/.kaggle/kaggle.json.*KAGGLE_USERNAME and KAGGLE_KEY.*kaggle-mini"):
        update_lock(portal_root, spec, progress=False)
    monkeypatch.setenv("KAGGLE_USERNAME", KAGGLE_USER)
    monkeypatch.setenv("KAGGLE_KEY", "wrong-key-value")
    with pytest.raises(PortalError, match=r"refused the credentials \(401 Unauthorized\)") as caught:
        update_lock(portal_root, spec, progress=False)
    assert "wrong-key-value" not in str(caught.value)
    monkeypatch.setenv("KAGGLE_KEY", KAGGLE_SECRET)
    update_lock(portal_root, spec, progress=False)
    fetch_source(portal_root, spec, progress=False)
    assert presence(portal_root, "kaggle-mini").complete
    written = b"".join(p.read_bytes() for p in portal_root.rglob("*") if p.is_file())
    written += b"".join(p.read_bytes() for p in git_dir(portal_root).rglob("*") if p.is_file())
    assert KAGGLE_SECRET.encode() not in written
    assert KAGGLE_SECRET not in capsys.readouterr().err


def test_kaggle_json_is_read(portal_root: Path, server, monkeypatch, tmp_path: Path) -> None:
    folder = tmp_path / "kaggle-config"
    folder.mkdir()
    (folder / "kaggle.json").write_text(f'{{"username": "{KAGGLE_USER}", "key": "{KAGGLE_SECRET}"}}')
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(folder))
    spec = spec_of(portal_root, "kaggle-mini")
    update_lock(portal_root, spec, progress=False)
    assert read_lock(portal_root, "kaggle-mini").entries[0].locator == (
        "https://www.kaggle.com/api/v1/datasets/download/someone/kaggle-mini?datasetVersionNumber=2"
    )


def test_from_dir_takes_hand_downloaded_files_and_verifies_them(portal_root: Path, server, tmp_path: Path) -> None:
    spec = spec_of(portal_root, ZENODO_SOURCE)
    update_lock(portal_root, spec, progress=False)
    manual = tmp_path / "by-hand"
    downloads_of(portal_root, ZENODO_SOURCE).rename(manual)
    (manual / "Infection_Mask.zip").write_bytes(b"an error page saved by a browser")
    server.state.requests.clear()
    with pytest.raises(ChangedUpstream, match=r"Infection_Mask\.zip from .*by-hand"):
        fetch_source(portal_root, spec, from_dir=manual, progress=False)
    assert not server.state.requests  # --from never asks the portal
    assert not source_dir(portal_root, ZENODO_SOURCE).exists()


def test_two_fetches_of_one_source_are_serialised(portal_root: Path) -> None:
    spec = spec_of(portal_root, ZENODO_SOURCE)
    update_lock(portal_root, spec, progress=False)
    held = filelock.FileLock(str(git_dir(portal_root) / "covid19-images-fetch" / f"{ZENODO_SOURCE}.lock"))
    with held, pytest.raises(filelock.Timeout):
        fetch_source(portal_root, spec, progress=False, wait=0.2)
    fetch_source(portal_root, spec, progress=False, wait=0.2)


def test_dry_run_plan_counts_files_and_bytes(portal_root: Path) -> None:
    spec = spec_of(portal_root, "big-zenodo")
    update_lock(portal_root, spec, progress=False)
    lock = read_lock(portal_root, "big-zenodo")
    kept = downloads_of(portal_root, "big-zenodo") / lock.entries[0].path
    kept.rename(kept.with_name(kept.name + ".part"))
    with open(kept.with_name(kept.name + ".part"), "r+b") as handle:
        handle.truncate(1000)
    todo = plan(portal_root, spec)
    assert (len(todo.missing), todo.partial_bytes, todo.bytes_to_get) == (1, 1000, lock.entries[0].size - 1000)


def test_insteadof_longest_prefix_wins_and_only_loopback_http() -> None:
    rules = UrlRewriter(
        (("https://zenodo.org/", "http://127.0.0.1:9/all/"), ("https://zenodo.org/api/", "http://127.0.0.1:9/api/"))
    )
    assert rules.rewrite("https://zenodo.org/api/records/1") == "http://127.0.0.1:9/api/records/1"
    assert rules.rewrite("https://zenodo.org/records/1") == "http://127.0.0.1:9/all/records/1"
    with pytest.raises(MirrorError):
        UrlRewriter((("https://zenodo.org/", "http://mirror.example/"),)).rewrite("https://zenodo.org/x")
    with pytest.raises(MirrorError):
        UrlRewriter((("https://zenodo.org/", "file:///etc/"),)).rewrite("https://zenodo.org/passwd")


def test_rules_are_read_from_git_config(portal_root: Path, server) -> None:
    rewritten = UrlRewriter.from_git(portal_root).rewrite("https://zenodo.org/api/records/3757476")
    assert rewritten == f"{server.base}/zenodo.org/api/records/3757476"


def test_tcia_series_land_in_patient_study_series_folders(portal_root: Path, server) -> None:
    from tests.sources.portal.conftest import SERIES

    spec = spec_of(portal_root, "tcia-mini")
    update_lock(portal_root, spec, progress=False)
    lock = read_lock(portal_root, "tcia-mini")
    assert {e.locator for e in lock.entries} >= {
        f"https://services.cancerimagingarchive.net/nbia-api/services/v1/getImage?SeriesInstanceUID={s['SeriesInstanceUID']}"
        for s in SERIES
    }
    fetch_source(portal_root, spec, progress=False)
    fetched = files_under(source_dir(portal_root, "tcia-mini"))
    expected = {
        f"{s['PatientID']}/{s['StudyInstanceUID']}/{s['SeriesInstanceUID']}/{name}": data
        for s in SERIES
        for name, data in s["files"].items()
    }
    assert {k: v for k, v in fetched.items() if k not in (MARKER, "clinical.csv")} == expected
    assert fetched["clinical.csv"].startswith(b"PatientID,finding")
    from covid19_images.sync.portals import entries_for

    one = entries_for(spec, lock, {"A000002/1.2.3.2/1.2.3.2.1/1-2.dcm"})
    assert one == {"A000002/1.2.3.2/1.2.3.2.1.zip"}  # --only fetches single series


def test_a_manual_source_says_where_to_accept_the_terms(portal_root: Path, tmp_path: Path) -> None:
    spec = spec_of(portal_root, "manual-mini")
    by_hand = tmp_path / "by-hand"
    by_hand.mkdir()
    with pytest.raises(PortalError, match="add --from DIR"):
        update_lock(portal_root, spec, progress=False)
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("sub-S0001/ses-E0001/mod-rx/image.png")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"png"))
    (by_hand / "subjects_1.tgz").write_bytes(buffer.getvalue())
    update_lock(portal_root, spec, from_dir=by_hand, progress=False)
    shutil.rmtree(downloads_of(portal_root, "manual-mini"))
    with pytest.raises(
        PortalError, match=r"behind an agreement.*https://bimcv.cipf.es/bimcv-projects/bimcv-covid19/.*--from"
    ):
        fetch_source(portal_root, spec, progress=False)
    fetch_source(portal_root, spec, from_dir=by_hand, progress=False)
    assert (source_dir(portal_root, "manual-mini") / "sub-S0001/ses-E0001/mod-rx/image.png").read_bytes() == b"png"


def test_the_extracted_tree_is_on_disk_before_its_marker_and_the_swap_is_made_durable(
    portal_root: Path, server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marker vouches for the fetched files by size alone, so a power cut must never leave
    a marker over files still in the page cache: the file system is synced (``syncfs``) with
    every extracted file complete, then the marker written, then the rename's folder fsynced."""
    import covid19_images.sources.portal.fetch as fetch_module

    events: list[tuple[str, str]] = []
    real_sync, real_state, real_dir = (
        fetch_module.sync_filesystem_of,
        fetch_module.write_state,
        fetch_module.fsync_dir,
    )

    def sync(path: Path) -> None:
        real_sync(path)
        complete = files_under(Path(path)) == miniature_files(miniature_dir(ZENODO_SOURCE))
        events.append(("syncfs", "complete" if complete else "incomplete"))

    def state(folder: Path, value) -> None:
        events.append(("marker", Path(folder).name))
        real_state(folder, value)

    def folder_sync(folder: Path) -> None:
        real_dir(folder)
        events.append(("fsync-dir", str(Path(folder))))

    monkeypatch.setattr(fetch_module, "sync_filesystem_of", sync)
    monkeypatch.setattr(fetch_module, "write_state", state)
    monkeypatch.setattr(fetch_module, "fsync_dir", folder_sync)
    spec = spec_of(portal_root, ZENODO_SOURCE)
    update_lock(portal_root, spec, progress=False)
    fetch_source(portal_root, spec, progress=False)
    current = source_dir(portal_root, ZENODO_SOURCE)
    assert [e[0] for e in events] == ["syncfs", "marker", "fsync-dir"], events
    assert events[0][1] == "complete", "synced before every extracted file was written"
    assert events[1][1].startswith(f".{ZENODO_SOURCE}.staging-")  # the marker goes into the staged tree
    assert events[2][1] == str(current.parent)
    assert presence(portal_root, ZENODO_SOURCE).complete


def test_a_kept_download_damaged_on_disk_is_downloaded_again_never_used(portal_root: Path, server) -> None:
    """Downloads are not fsynced: what protects them is that a kept download is hashed against
    the lock before every use. A kept file that lost its pages (same size, other bytes, as a
    power cut can leave it) is fetched again and the fetched tree is the pinned one."""
    spec = spec_of(portal_root, ZENODO_SOURCE)
    lock = update_lock(portal_root, spec, progress=False)[1]
    kept = downloads_of(portal_root, ZENODO_SOURCE) / "Lung_Mask.zip"
    size = kept.stat().st_size
    kept.write_bytes(b"\0" * size)
    server.state.requests.clear()
    fetch_source(portal_root, spec, progress=False)
    assert server.requests_for(ZENODO_FILE), "the damaged kept download was used instead of fetched again"
    fetched = files_under(source_dir(portal_root, ZENODO_SOURCE))
    fetched.pop(MARKER)
    assert fetched == miniature_files(miniature_dir(ZENODO_SOURCE))
    entry = next(e for e in lock.entries if e.path == "Lung_Mask.zip")
    assert kept.stat().st_size == entry.size and kept.read_bytes() != b"\0" * size
