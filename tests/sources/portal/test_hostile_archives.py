"""Hostile archives and hostile conditions: escaping members, links, zip bombs, a full disk, kill -9."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import tarfile
import textwrap
import time
import warnings
import zipfile
from pathlib import Path

import pytest

from covid19_images.sources.portal.extract import UnsafeArchive, extract
from covid19_images.sources.portal.fetch import downloads_of, fetch_source
from covid19_images.sources.portal.lock import read_lock
from covid19_images.sources.portal.state import MARKER, presence, source_dir
from covid19_images.sources.portal.update import update_lock
from covid19_images.testing.portal_server import deterministic_zip
from tests.sources.portal.conftest import big_payload, files_under, spec_of

BIG_FILE = "/zenodo.org/api/records/424242/files/volumes.zip/content"


def _zip(members: list[tuple[str, bytes, int]]) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": the point of one case
        for name, data, mode in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return out.getvalue()


def _tar(add) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        add(tf)
    return out.getvalue()


def _tar_link(kind: bytes) -> bytes:
    def add(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("ok.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"ok"))
        link = tarfile.TarInfo("evil")
        link.type = kind
        link.linkname = "/etc/passwd"
        tf.addfile(link)

    return _tar(add)


REGULAR = stat.S_IFREG | 0o644


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


HOSTILE = {
    "zip-dotdot": (lambda: _zip([("../escaped.txt", b"x", REGULAR)]), r"climbs out"),
    "zip-absolute": (lambda: _zip([("/tmp/escaped.txt", b"x", REGULAR)]), r"absolute path"),
    "zip-backslash": (lambda: _zip([("..\\escaped.txt", b"x", REGULAR)]), r"refused"),
    "zip-symlink": (lambda: _zip([("link", b"/etc/passwd", stat.S_IFLNK | 0o777)]), r"link or special file"),
    "zip-duplicate": (lambda: _zip([("a.txt", b"1", REGULAR), ("a.txt", b"2", REGULAR)]), r"appears twice"),
    "zip-bomb": (lambda: _zip([("zeros.bin", bytes(40 << 20), REGULAR)]), r"possible zip bomb"),
    "tar-symlink": (lambda: _tar_link(tarfile.SYMTYPE), r"link or special file"),
    "tar-hardlink": (lambda: _tar_link(tarfile.LNKTYPE), r"link or special file"),
    "tar-dotdot": (
        lambda: _tar(lambda tf: tf.addfile(_info("../../escaped.txt", 1), io.BytesIO(b"x"))),
        r"climbs out",
    ),
    "tar-bomb": (
        lambda: _tar(lambda tf: tf.addfile(_info("zeros.bin", 40 << 20), io.BytesIO(bytes(40 << 20)))),
        r"zip bomb",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_and_nothing_escapes(tmp_path: Path, case: str) -> None:
    build, says = HOSTILE[case]
    data = build()
    archive = tmp_path / "downloads" / ("a.tar.gz" if case.startswith("tar") else "a.zip")
    archive.parent.mkdir()
    archive.write_bytes(data)
    target = tmp_path / "deep" / "staging"
    with pytest.raises(UnsafeArchive, match=says):
        extract(archive, target)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "deep" / "escaped.txt").exists()
    assert not any(p.is_symlink() for p in tmp_path.rglob("*"))
    assert not (target / "zeros.bin").exists() or (target / "zeros.bin").stat().st_size < (40 << 20)


def test_a_member_writing_more_than_it_declares_is_cut_off(tmp_path: Path) -> None:
    data = bytearray(_zip([("a.bin", b"A" * 1000, REGULAR)]))
    # lower the declared size in both headers: the stream now yields more than declared
    data = bytes(data).replace((1000).to_bytes(4, "little"), (10).to_bytes(4, "little"))
    archive = tmp_path / "lying.zip"
    archive.write_bytes(data)
    with pytest.raises(UnsafeArchive, match=r"more than the 10 bytes|damaged archive"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "a.bin").exists() or (tmp_path / "out" / "a.bin").stat().st_size <= 10


def test_fetch_of_a_hostile_archive_leaves_no_folder(portal_root: Path, server) -> None:
    spec = spec_of(portal_root, "big-zenodo")
    server.add_zenodo_record("424242", {"volumes.zip": HOSTILE["zip-dotdot"][0]()})
    update_lock(portal_root, spec, progress=False)  # a maintainer pinned a hostile archive: extraction still refuses
    with pytest.raises(UnsafeArchive, match="climbs out"):
        fetch_source(portal_root, spec, progress=False)
    assert not source_dir(portal_root, "big-zenodo").exists()
    assert not list((portal_root / "datasets").glob(".big-zenodo.*"))
    assert not list(portal_root.parent.rglob("escaped.txt"))


FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like ENOSPC
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    from covid19_images.sources.portal.fetch import fetch_source
    from covid19_images.sources.registry import load_registry
    root = Path(sys.argv[1])
    try:
        fetch_source(root, load_registry(root)["big-zenodo"], progress=False)
    except OSError as err:
        print("failed:", err.errno)
        sys.exit(3)
    """
)


def test_a_full_disk_during_extraction_leaves_nothing_behind(portal_root: Path) -> None:
    spec = spec_of(portal_root, "big-zenodo")
    update_lock(portal_root, spec, progress=False)  # the download is complete; extracting needs a 600 kB file
    out = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(portal_root)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 3, out.stderr
    assert "failed: 27" in out.stdout  # EFBIG
    assert not source_dir(portal_root, "big-zenodo").exists()
    assert not list((portal_root / "datasets").glob(".big-zenodo.*"))
    assert not presence(portal_root, "big-zenodo").complete
    fetch_source(portal_root, spec, progress=False)  # with room again, the kept download is enough
    assert presence(portal_root, "big-zenodo").complete


def _fetch_process(root: Path, env: dict[str, str]) -> subprocess.Popen:
    code = (
        "import sys; from pathlib import Path; from covid19_images.sources.portal.fetch import fetch_source; "
        "from covid19_images.sources.registry import load_registry; root = Path(sys.argv[1]); "
        "fetch_source(root, load_registry(root)['big-zenodo'], progress=False)"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(root)], env=env)


def _kill_when(process: subprocess.Popen, ready, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert process.poll() is None, "the fetch ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_kill_9_during_the_download_then_fetch_again(portal_root: Path, server) -> None:
    spec = spec_of(portal_root, "big-zenodo")
    update_lock(portal_root, spec, progress=False)
    entry = read_lock(portal_root, "big-zenodo").entries[0]
    (downloads_of(portal_root, "big-zenodo") / entry.path).unlink()
    part = downloads_of(portal_root, "big-zenodo") / f"{entry.path}.part"
    server.state.rate = 200_000  # bytes per second: the download takes about 4 s
    process = _fetch_process(portal_root, dict(os.environ))
    _kill_when(process, lambda: part.is_file() and part.stat().st_size > 50_000)
    assert not presence(portal_root, "big-zenodo").complete and not source_dir(portal_root, "big-zenodo").exists()
    server.state.rate = 0
    server.state.requests.clear()
    fetch_source(portal_root, spec, progress=False)
    assert presence(portal_root, "big-zenodo").complete
    ranges = [r for _, r in server.requests_for("424242/files/volumes.zip")]
    assert ranges and ranges[0].startswith("bytes=") and int(ranges[0][6:-1]) > 50_000  # resumed, not restarted


@pytest.mark.parametrize("point", ["fetch.extracted", "fetch.staged", "fetch.swapping"])
def test_kill_9_while_building_the_folder_never_looks_complete(portal_root: Path, point: str) -> None:
    spec = spec_of(portal_root, "big-zenodo")
    update_lock(portal_root, spec, progress=False)
    fetch_source(portal_root, spec, progress=False)
    before = files_under(source_dir(portal_root, "big-zenodo"))
    # a new lock (the portal's next version) whose fetch is killed half-way
    new_payload = {"case_1.nii.gz": b"new version" * 1000}
    server_zip = deterministic_zip(new_payload)
    lock_file = portal_root / "manifests" / "locks" / "big-zenodo.lock.tsv"
    import hashlib

    old_line = lock_file.read_text().splitlines()[-1].split("\t")
    new_line = [old_line[0], str(len(server_zip)), "", hashlib.sha256(server_zip).hexdigest(), old_line[4]]
    lock_file.write_text("\n".join([*lock_file.read_text().splitlines()[:-1], "\t".join(new_line)]) + "\n")
    (downloads_of(portal_root, "big-zenodo") / old_line[0]).write_bytes(server_zip)
    env = {**os.environ, "COVID19_IMAGES_KILL_AT": point}
    process = _fetch_process(portal_root, env)
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert not presence(portal_root, "big-zenodo").complete
    folder = source_dir(portal_root, "big-zenodo")
    if folder.exists():  # the old folder (its marker names the old lock) or nothing: never half of the new one
        assert files_under(folder) == before
    fetch_source(portal_root, spec, progress=False)
    assert presence(portal_root, "big-zenodo").complete
    after = files_under(source_dir(portal_root, "big-zenodo"))
    assert after.pop(MARKER) and after == {"ct_scans/case_1.nii.gz": new_payload["case_1.nii.gz"]}
    assert not list((portal_root / "datasets").glob(".big-zenodo.*"))
    assert big_payload()  # the fixture's payload is what the old folder held
