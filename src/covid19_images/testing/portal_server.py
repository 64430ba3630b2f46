"""A loopback stand-in for the portals, speaking the calls ``fetch`` makes (tests, demo, benchmark).

One ``ThreadingHTTPServer`` on 127.0.0.1 serves every portal under a prefix named after its
host (``/zenodo.org/...``, ``/www.kaggle.com/...``, ``/services.cancerimagingarchive.net/...``),
so a root points at it with one ``url.<base>.insteadOf`` rule per host
(:func:`insteadof_rules`), exactly as it would point at a real mirror. It answers the
portals' wire formats: a Zenodo record's JSON and its files, a Kaggle dataset download (a zip,
basic auth required) and ``datasets/view``, NBIA ``getSeries``/``getImage``, plain files; all
with ``Range``. Faults are injected per path: HTTP statuses, bodies cut after N bytes, a
bandwidth limit, changed content.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import stat
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

HOSTS = ("zenodo.org", "www.kaggle.com", "services.cancerimagingarchive.net", "api.figshare.com")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
NBIA_PATH = "/services.cancerimagingarchive.net/nbia-api/services/v1/"
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def deterministic_zip(files: Mapping[str, bytes]) -> bytes:
    """A zip of ``files`` with fixed dates and order: the same content always gives the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, files[name])
    return out.getvalue()


@dataclass
class PortalState:
    """What the server holds and how it misbehaves; tests change it between requests."""

    #: URL path (``/zenodo.org/api/records/1/files/a.zip/content``) -> bytes or a file on disk
    content: dict[str, bytes | Path] = field(default_factory=dict)
    #: path -> HTTP statuses to answer on the next requests, one each, before serving normally
    statuses: dict[str, list[int]] = field(default_factory=dict)
    #: path -> byte counts after which the next responses' bodies are cut (connection closed)
    cuts: dict[str, list[int]] = field(default_factory=dict)
    #: Kaggle basic-auth credentials the server accepts (None: no auth asked)
    kaggle_auth: tuple[str, str] | None = None
    #: bytes per second per response (0: unlimited)
    rate: int = 0
    honour_range: bool = True
    #: AWS Open Data buckets: host (``<bucket>.s3.amazonaws.com``) -> keys listed by ListObjectsV2
    s3_keys: dict[str, list[str]] = field(default_factory=dict)
    #: keys per ListObjectsV2 page (S3's own is 1,000; tests make it small to page)
    s3_page: int = 1000
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args) -> None:
        return

    def _send_status(self, status: int) -> None:
        body = json.dumps({"code": status, "message": self.responses.get(status, ("",))[0]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        state = self.server.state
        path = urlsplit(self.path).path
        with state.lock:
            state.requests.append((self.path, self.headers.get("Range", "")))
            queued = state.statuses.get(path) or state.statuses.get("*")
            status = queued.pop(0) if queued else None
            cuts = state.cuts.get(path)
            cut = cuts.pop(0) if cuts else None
        if status is not None:
            self._send_status(status)
            return
        if path.startswith("/www.kaggle.com/") and state.kaggle_auth is not None:
            expected = "Basic " + base64.b64encode(":".join(state.kaggle_auth).encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._send_status(401)
                return
        body = state.content.get(self.path) or state.content.get(path)
        host = path.split("/", 2)[1] if path.count("/") >= 2 else ""
        if body is None and host in state.s3_keys and path == f"/{host}/":
            body = _s3_listing(state, host, query_of(self.path))
        if body is None:
            self._send_status(404)
            return
        self._send_body(body, head, cut)

    def _send_body(self, body: bytes | Path, head: bool, cut: int | None) -> None:
        state = self.server.state
        total = body.stat().st_size if isinstance(body, Path) else len(body)
        start, end = 0, total - 1
        match = _RANGE.fullmatch(self.headers.get("Range", "").strip())
        if match and state.honour_range:
            start = int(match.group(1))
            end = min(int(match.group(2)), total - 1) if match.group(2) else total - 1
            if start >= total:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if head:
            return
        self._write_range(body, start, end + 1, cut)

    def _write_range(self, body: bytes | Path, start: int, stop: int, cut: int | None) -> None:
        rate = self.server.state.rate
        limit = stop if cut is None else min(stop, start + cut)
        position = start
        handle = open(body, "rb") if isinstance(body, Path) else None  # noqa: SIM115 - closed below
        try:
            if handle is not None:
                handle.seek(start)
            while position < limit:
                size = min(1 << 20 if not rate else max(1, rate // 20), limit - position)
                chunk = handle.read(size) if handle is not None else body[position : position + size]
                self.wfile.write(chunk)
                position += len(chunk)
                if rate:
                    time.sleep(len(chunk) / rate)
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            if handle is not None:
                handle.close()
        if cut is not None and limit < stop:
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: PortalState


class PortalServer:
    """The server in a background thread; ``base`` is its URL (``http://127.0.0.1:<port>``)."""

    def __init__(self, state: PortalState | None = None) -> None:
        self.state = state or PortalState()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self._thread = threading.Thread(target=self._server.serve_forever, name="portal-server", daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> PortalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the portals' wire formats ---------------------------------------------------------
    def add_zenodo_record(self, record: str, files: Mapping[str, bytes | Path], *, latest: str | None = None) -> None:
        """A Zenodo record: its JSON (``files[]`` with key, size, md5 checksum) and each file's content."""
        entries = []
        for key, data in files.items():
            url = f"/zenodo.org/api/records/{record}/files/{quote(key)}/content"
            self.state.content[url] = data
            size, md5 = _size_md5(data)
            entries.append({"key": key, "size": size, "checksum": "md5:" + md5, "links": {"self": url}})
        record_doc = json.dumps({"id": int(record), "files": entries}).encode()
        self.state.content[f"/zenodo.org/api/records/{record}"] = record_doc
        latest_doc = json.dumps({"id": int(latest or record)}).encode()
        self.state.content[f"/zenodo.org/api/records/{record}/versions/latest"] = latest_doc

    def add_kaggle_dataset(self, dataset: str, version: str, files: Mapping[str, bytes], *, current: str = "") -> bytes:
        """A Kaggle dataset version: the whole-dataset zip, each single file, and ``datasets/view``."""
        archive = deterministic_zip(files)
        base = f"/www.kaggle.com/api/v1/datasets/download/{dataset}"
        self.state.content[f"{base}?datasetVersionNumber={version}"] = archive
        for name, data in files.items():
            self.state.content[f"{base}/{quote(name)}?datasetVersionNumber={version}"] = data
        view = {"ref": dataset, "currentVersionNumber": int(current or version)}
        self.state.content[f"/www.kaggle.com/api/v1/datasets/view/{dataset}"] = json.dumps(view).encode()
        return archive

    def add_tcia_collection(self, collection: str, series: list[dict]) -> None:
        """NBIA ``getSeries`` of a collection and ``getImage`` (a zip) of each series.

        Each item: ``PatientID``, ``StudyInstanceUID``, ``SeriesInstanceUID``, ``Modality``, ``files``.
        """
        listing = []
        for item in series:
            uid = item["SeriesInstanceUID"]
            zipped = deterministic_zip(item["files"])
            self.state.content[f"{NBIA_PATH}getImage?SeriesInstanceUID={uid}"] = zipped
            listing.append({k: v for k, v in item.items() if k != "files"} | {"ImageCount": len(item["files"])})
        key = f"{NBIA_PATH}getSeries?Collection={collection}"
        self.state.content[key] = json.dumps(listing).encode()

    def add_s3_bucket(self, bucket: str, files: Mapping[str, bytes | Path]) -> None:
        """An AWS Open Data bucket: ListObjectsV2 at ``/`` (paged by ``state.s3_page``) and each object."""
        host = f"{bucket}.s3.amazonaws.com"
        for key, data in files.items():
            self.state.content[f"/{host}/{key}"] = data
        self.state.s3_keys[host] = sorted(set(self.state.s3_keys.get(host, [])) | set(files))

    def add_figshare_article(self, article: str, version: str, files: Mapping[str, bytes | Path]) -> None:
        """A figshare article version (API v2 JSON: ``files[]`` with name, size, computed_md5,
        download_url on ndownloader.figshare.com) and the article's newest ``version``."""
        entries = []
        for number, (name, data) in enumerate(sorted(files.items()), start=1):
            url = f"https://ndownloader.figshare.com/files/{article}{number:04d}"
            self.add_url(url, data)
            size, md5 = _size_md5(data)
            entries.append({"id": number, "name": name, "size": size, "computed_md5": md5, "download_url": url})
        doc = json.dumps({"id": int(article), "version": int(version), "files": entries}).encode()
        self.state.content[f"/api.figshare.com/v2/articles/{article}/versions/{version}"] = doc
        self.state.content[f"/api.figshare.com/v2/articles/{article}"] = doc

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host this server stands in for: the portals, and the hosts of plain files added."""
        extra = {path.split("/", 2)[1] for path in self.state.content} - set(HOSTS)
        return (*HOSTS, *sorted(extra))

    def add_url(self, url: str, data: bytes | Path) -> None:
        """A plain file at the https ``url`` it has upstream."""
        parts = urlsplit(url)
        self.state.content[f"/{parts.netloc}{unquote(parts.path)}" + (f"?{parts.query}" if parts.query else "")] = data

    def requests_for(self, fragment: str) -> list[tuple[str, str]]:
        with self.state.lock:
            return [r for r in self.state.requests if fragment in r[0]]


def _size_md5(data: bytes | Path) -> tuple[int, str]:
    """Size and md5 (what Zenodo publishes) of bytes or of a file, read in chunks."""
    if not isinstance(data, Path):
        return len(data), hashlib.md5(data).hexdigest()
    digest, size = hashlib.md5(), 0
    with open(data, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _s3_listing(state: PortalState, host: str, query: dict[str, list[str]]) -> bytes:
    """One ListObjectsV2 page (XML) of the keys under ``prefix``, after ``continuation-token``."""
    from xml.sax.saxutils import escape

    prefix = query.get("prefix", [""])[0]
    after = query.get("continuation-token", [""])[0]
    keys = [k for k in state.s3_keys[host] if k.startswith(prefix) and k > after]
    page, more = keys[: state.s3_page], len(keys) > state.s3_page
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    ]
    parts.append(
        f"<Name>{escape(host.split('.')[0])}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(page)}</KeyCount>"
    )
    for key in page:
        size = _size_md5(state.content[f"/{host}/{key}"])[0]
        parts.append(f"<Contents><Key>{escape(key)}</Key><Size>{size}</Size></Contents>")
    parts.append(f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>")
    if more:
        parts.append(f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>")
    parts.append("</ListBucketResult>")
    return "".join(parts).encode()


def insteadof_rules(base: str, hosts: tuple[str, ...] = HOSTS) -> list[tuple[str, str]]:
    """``(git config key, value)`` pairs pointing every one of ``hosts`` at the server ``base``."""
    return [(f"url.{base}/{host}/.insteadOf", f"https://{host}/") for host in hosts]


def point_root_at(root: Path, server: PortalServer | str) -> None:
    """Write the ``insteadOf`` rules into ``root``'s own git config (as a user would for a mirror).

    Given the server, every host it serves is pointed at it (portals and plain files alike), and
    an earlier server's rules for those hosts are removed.
    """
    import git

    base, hosts = (server.base, server.hosts) if isinstance(server, PortalServer) else (server, HOSTS)
    repo = git.Repo(root)
    rules = insteadof_rules(base, hosts)
    wanted = {value for _key, value in rules}
    try:  # an earlier server's rules for the same hosts would tie with these: git would pick either
        earlier = repo.git.config("--local", "--get-regexp", r"^url\..*\.insteadof$").splitlines()
    except git.GitCommandError:  # none yet
        earlier = []
    for line in earlier:
        key, _sep, value = line.partition(" ")
        if value in wanted:
            repo.git.config("--local", "--unset-all", key)
    for key, value in rules:
        repo.git.config("--replace-all", key, value)


@contextmanager
def running(state: PortalState | None = None) -> Iterator[PortalServer]:
    server = PortalServer(state).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def kaggle_token(server: PortalServer, key: str, user: str = "tester") -> Iterator[None]:
    """``server`` accepts only a made-up Kaggle token, set as users set theirs.

    ``KAGGLE_USERNAME``/``KAGGLE_KEY`` hold the token inside the block and are restored after, so
    the fetch code reads the environment as it does for a user, and a user's real token
    (environment or ``~/.kaggle/kaggle.json``) is never read, nor sent anywhere.
    """
    saved = {name: os.environ.get(name) for name in ("KAGGLE_USERNAME", "KAGGLE_KEY")}
    server.state.kaggle_auth = (user, key)
    os.environ["KAGGLE_USERNAME"], os.environ["KAGGLE_KEY"] = user, key
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def running_with_kaggle_token(key: str, user: str = "tester") -> Iterator[PortalServer]:
    """The loopback portal, accepting only the made-up token ``key`` (:func:`kaggle_token`)."""
    with running() as server, kaggle_token(server, key, user):
        yield server


def query_of(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query)
