"""Fetch throughput against curl on the same loopback files, and peak memory for a large archive.

A generated archive (random bytes, stored: the worst case for memory, nothing compresses)
is served by the loopback portal (``covid19_images.testing.portal_server``). Two measures:

* **download throughput**: ``covid19_images.sources.portal.http.download`` (streaming to a
  ``.part`` file with sha256 computed on the way and the file fsynced, as ``fetch`` does)
  against ``curl -o`` of the same URL, and against ``curl -o`` followed by ``sync FILE`` (an
  fsync: the durability ours gives every download before it counts). Each round runs ours,
  curl, curl+fsync, curl+fsync, curl, ours (symmetric: a load that rises or falls through the
  round weighs on all alike) and its ratios are ours' mean throughput over each curl's. Goal:
  ours >= 80% of curl in every round. Beside it, once a round,
  the two ways to verify with curl: ``curl -o`` then ``sha256sum``, and ``curl | tee | sha256sum``.
* **peak RSS of a whole fetch** (pin with ``update_lock``, then ``fetch_source``: download,
  verify, safe extraction, atomic swap) in a child process, against the same child doing only
  its imports: the difference is what fetching the archive costs in memory.

The download rounds are served by **nginx** where it is installed (``--server nginx``, the
default then): a static file server using ``sendfile`` takes almost no CPU, as a portal's
server is on another machine. On 2 vCPUs the loopback portal (a Python ``ThreadingHTTPServer``)
needs about a core of its own to serve 300+ MiB/s, which leaves curl (which hashes nothing)
and ours (which hashes as it writes) fighting the server for the rest: that measured the
benchmark's server, not the client. ``--server python`` keeps the loopback portal for the
rounds; the whole-fetch memory measure always uses it (it speaks Zenodo's API).

Usage: ``.venv/bin/python benchmarks/bench_fetch.py --size-mb 2048 --rounds 3 [--server nginx|python]
[--out result.json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from covid19_images.testing.portal_server import PortalServer

#: ours runs in its own process, as curl does (in the benchmark's process it would share the
#: interpreter lock with the server's threads)
DOWNLOAD = """
import sys, time
from pathlib import Path
from covid19_images.sources.portal.http import download, make_session
session = make_session()
begin = time.perf_counter()
got = download(session, sys.argv[1], Path(sys.argv[2]), what="bench", progress=False, digests=("sha256",))
print(got.size, time.perf_counter() - begin)
"""
CHILD = """
import sys, time
from pathlib import Path
started = time.perf_counter()
if sys.argv[2] == "fetch":
    from covid19_images.sources.portal.fetch import fetch_source
    from covid19_images.sources.portal.update import update_lock
    from covid19_images.sources.registry import load_registry
    root = Path(sys.argv[1])
    spec = load_registry(root)["bench-archive"]
    update_lock(root, spec, progress=False)
    fetch_source(root, spec, progress=False)
else:
    import covid19_images.sources.portal.fetch, covid19_images.sources.portal.update  # noqa: F401
# VmHWM: the peak of this process image (ru_maxrss would carry the parent's size over the fork)
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak, time.perf_counter() - started)
"""


def make_archive(path: Path, size: int, members: int = 8) -> None:
    """A stored (uncompressed) zip of ``members`` random files totalling ``size`` bytes."""
    rng = random.Random(2026)
    each = size // members
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for index in range(members):
            with zf.open(
                zipfile.ZipInfo(f"volumes/case_{index}.bin", (2020, 1, 1, 0, 0, 0)), "w", force_zip64=True
            ) as out:
                left = each
                while left:
                    block = rng.randbytes(min(left, 32 << 20))
                    out.write(block)
                    left -= len(block)


def _ours(url: str, folder: Path, size: int) -> float:
    """MiB/s of one ``download`` in its own process."""
    target = folder / "ours.part"
    target.unlink(missing_ok=True)
    out = subprocess.run([sys.executable, "-c", DOWNLOAD, url, str(target)], capture_output=True, text=True)
    got, seconds = out.stdout.split()
    assert int(got) == size, out.stderr
    target.unlink()
    return size / float(seconds) / 2**20


def _curl(url: str, folder: Path, size: int, durable: bool = False) -> float:
    """MiB/s of one ``curl -o`` (including its start, as ours includes nothing but the download).

    ``durable``: then ``sync FILE`` (coreutils: fsync of that file), the durability ours gives
    every download before it counts. Plain ``curl -o`` leaves the file in the page cache.
    """
    begin = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", str(folder / "curl.out"), url], check=True)
    if durable:
        subprocess.run(["sync", str(folder / "curl.out")], check=True)
    seconds = time.perf_counter() - begin
    assert (folder / "curl.out").stat().st_size == size
    (folder / "curl.out").unlink()
    return size / seconds / 2**20


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def nginx_serving(folder: Path):
    """Serve ``folder`` read-only on loopback with nginx (Range requests and sendfile built in)."""
    port = _free_port()
    conf = folder / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""  # workers must read the benchmark's private folder
    conf.write_text(
        f"""{user}
daemon off; worker_processes 1; pid {folder}/nginx.pid; error_log {folder}/nginx.err;
events {{ worker_connections 64; }}
http {{
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path {folder}/tmp; proxy_temp_path {folder}/tmp; fastcgi_temp_path {folder}/tmp;
  uwsgi_temp_path {folder}/tmp; scgi_temp_path {folder}/tmp;
  server {{ listen 127.0.0.1:{port}; root {folder}/www; }}
}}
"""
    )
    (folder / "www").mkdir(exist_ok=True)
    (folder / "tmp").mkdir(exist_ok=True)
    process = subprocess.Popen([shutil.which("nginx"), "-c", str(conf), "-p", str(folder)])
    try:
        for _ in range(100):  # bounded: 10 s for nginx to listen
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"nginx did not start: {(folder / 'nginx.err').read_text()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _root(folder: Path, server: PortalServer) -> Path:
    import git
    import yaml

    from covid19_images.testing.portal_server import point_root_at

    root = folder / "root"
    git.Repo.init(root, initial_branch="main")
    source = {
        "name": "bench-archive",
        "kind": "portal",
        "portal": "zenodo",
        "dataset": "1",
        "version": "1",
        "parser": "covid19-ct-seg",
        "modalities": ["ct"],
        "license": "CC0-1.0",
        "terms_url": "https://zenodo.org/records/1",
        "files": [{"name": "archive.zip"}],
    }
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}))
    point_root_at(root, server)
    return root


def _rounds(url: str, folder: Path, size: int, rounds: int):
    """Symmetric rounds of ours and curl (with and without fsync), and curl with sha256sum once a round."""
    ours, curl, durable, verified, piped, ratios, durable_ratios = [], [], [], [], [], [], []
    for _ in range(rounds):
        mine, theirs, synced = [], [], []
        for who in ("ours", "curl", "curl+fsync", "curl+fsync", "curl", "ours"):
            if who == "ours":
                mine.append(_ours(url, folder, size))
            else:
                (theirs if who == "curl" else synced).append(_curl(url, folder, size, durable=who != "curl"))
        ours += mine
        curl += theirs
        durable += synced
        ratios.append(sum(mine) / sum(theirs))
        durable_ratios.append(sum(mine) / sum(synced))
        begin = time.perf_counter()
        curl_then_hash = f"curl -sS --fail -o {folder / 'curl.out'} {url} && sha256sum {folder / 'curl.out'}"
        subprocess.run(["sh", "-c", curl_then_hash], check=True, capture_output=True)
        verified.append(size / (time.perf_counter() - begin) / 2**20)
        begin = time.perf_counter()  # curl hashing while it downloads, as ours does: through tee
        hashing = f"set -o pipefail; curl -sS --fail {url} | tee {folder / 'curl.out'} | sha256sum"
        subprocess.run(["bash", "-c", hashing], check=True, capture_output=True)
        piped.append(size / (time.perf_counter() - begin) / 2**20)
        (folder / "curl.out").unlink()
        print(
            f"round: ours {' '.join(f'{x:.0f}' for x in mine)}, curl {' '.join(f'{x:.0f}' for x in theirs)}, "
            f"curl+fsync {' '.join(f'{x:.0f}' for x in synced)}, ratio {ratios[-1]:.2f} "
            f"(vs curl+fsync {durable_ratios[-1]:.2f}), curl then sha256sum {verified[-1]:.0f}, curl | tee | sha256sum "
            f"{piped[-1]:.0f} MiB/s",
            flush=True,
        )
    return ours, curl, durable, verified, piped, ratios, durable_ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--server", choices=("nginx", "python"), default="nginx" if shutil.which("nginx") else "python")
    args = parser.parse_args()
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="bench-fetch-"))
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "archive.zip"
    started = time.perf_counter()
    make_archive(archive, args.size_mb << 20)
    size = archive.stat().st_size
    print(f"archive: {size / 2**20:.0f} MiB generated in {time.perf_counter() - started:.0f} s", flush=True)
    server = PortalServer().start()
    rounds_server = contextlib.nullcontext(None)
    if args.server == "nginx":
        (folder / "www").mkdir(exist_ok=True)
        os.link(archive, folder / "www" / "archive.zip")
        rounds_server = nginx_serving(folder)
    try:
        server.add_zenodo_record("1", {"archive.zip": archive})
        with rounds_server as static:
            url = (
                f"{static}/archive.zip"
                if static
                else f"{server.base}/zenodo.org/api/records/1/files/archive.zip/content"
            )
            ours, curl, durable, verified, piped, ratios, durable_ratios = _rounds(url, folder, size, args.rounds)
        root = _root(folder, server)
        child = [sys.executable, "-c", CHILD, str(root)]
        base_rss, _ = subprocess.run([*child, "imports"], capture_output=True, text=True, check=True).stdout.split()
        fetch_rss, fetch_s = subprocess.run(
            [*child, "fetch"], capture_output=True, text=True, check=True
        ).stdout.split()
    finally:
        server.stop()
    result = {
        "rounds_server": args.server,
        "archive_mib": round(size / 2**20),
        "ours_mib_s_best": round(max(ours)),
        "curl_mib_s_best": round(max(curl)),
        "ratio_best": round(max(ours) / max(curl), 3),
        "ratio_per_round": [round(x, 3) for x in ratios],
        "ratio_worst_round": round(min(ratios), 3),
        "curl_fsync_mib_s": [round(x) for x in durable],
        "ratio_vs_curl_fsync_per_round": [round(x, 3) for x in durable_ratios],
        "ratio_vs_curl_fsync_worst_round": round(min(durable_ratios), 3),
        "curl_then_sha256sum_mib_s_best": round(max(verified)),
        "ratio_vs_curl_then_sha256sum": round(max(ours) / max(verified), 3),
        "curl_tee_sha256sum_mib_s_best": round(max(piped)),
        "ratio_vs_curl_tee_sha256sum": round(max(ours) / max(piped), 3),
        "ours_mib_s": [round(x) for x in ours],
        "curl_mib_s": [round(x) for x in curl],
        "rss_imports_mib": round(int(base_rss) / 1024),
        "rss_fetch_mib": round(int(fetch_rss) / 1024),
        "rss_fetch_extra_mib": round((int(fetch_rss) - int(base_rss)) / 1024),
        "whole_fetch_s": round(float(fetch_s), 1),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    if args.workdir is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
