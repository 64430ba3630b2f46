"""Downloads: streamed to disk, resumed with HTTP ``Range``, retried with backoff, hashed on the way.

requests + urllib3's ``Retry`` do the transport (connection reuse, 429/5xx retried with
exponential backoff and ``Retry-After``); what they do not do is resume a body that was cut
half-way (pooch and torchvision restart from byte 0), so :func:`download` keeps a ``.part``
file and asks for the rest with ``Range: bytes=<size>-``, checking the server's
``Content-Range`` before appending. Memory stays at one chunk whatever the file's size.
Every refusal says what the user can do, with the portal's terms URL where one applies.

A download is not fsynced. What it wrote counts only through its hash: a kept download is
hashed again against the lock before every use (``fetch.obtain``), and a ``.part``
is hashed again before it is resumed, so a power cut that loses pages of it costs a new
download, never a damaged file taken for good. Durability is paid once, where a file is
vouched for by its size alone: the extracted tree, before its fetch marker is written
(``fetch._build``). An fsync here would bind every download to the disk's writeback rate
(520 MiB/s on this machine against 780 MiB/s of page cache: ``docs/benchmarks.md``).
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter
from tqdm.auto import tqdm
from urllib3.util.retry import Retry

from covid19_images.core.failpoints import checkpoint

CHUNK = 1 << 20
#: chunks that may wait for the hashing thread (memory: HASH_QUEUE x CHUNK at most)
HASH_QUEUE = 8
#: backoff factor of the retries (seconds; doubled per retry); tests and demos shorten it
BACKOFF_ENV = "COVID19_IMAGES_FETCH_BACKOFF"
RETRIES = 5
#: consecutive cut bodies without a byte of progress before giving up (each resumes where it stopped)
STALLS = 5
TIMEOUT = (30, 120)
USER_AGENT = "covid19-images (+https://github.com/covid19-images)"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class PortalError(RuntimeError):
    """A download that cannot go on; the message says what to do (and never holds a credential)."""


def make_session() -> requests.Session:
    """A session that retries connection errors, 429 and 5xx with backoff (``Retry-After`` honoured)."""
    backoff = float(os.environ.get(BACKOFF_ENV, "1") or 1)
    retry = Retry(
        total=RETRIES,
        connect=RETRIES,
        read=RETRIES,
        status=RETRIES,
        backoff_factor=backoff,
        backoff_max=60 * backoff,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    session.trust_env = False  # no ~/.netrc credentials sent to a mirror, no proxy for loopback
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT  # Zenodo asks for one (pooch#502)
    return session


def explain_status(status: int, what: str, *, terms_url: str = "", hint: str = "") -> str:
    """The message for an HTTP refusal: what happened to ``what`` and what the user can do."""
    terms = f" ({terms_url})" if terms_url else ""
    if status == 401:
        return f"{what}: the portal refused the credentials (401 Unauthorized). {hint}".strip()
    if status == 403:
        return (
            f"{what}: access denied (403 Forbidden). Log in to the portal and accept the dataset's terms or "
            f"competition rules in a browser{terms}; the API cannot accept them for you. Then run fetch again."
        )
    if status == 404:
        return (
            f"{what}: not found (404). The file or the pinned version is no longer on the portal; a maintainer can "
            "see what is there with `covid19-images sync --check-portals`."
        )
    if status == 429:
        return (
            f"{what}: rate limited (429 Too Many Requests) after {RETRIES} retries; wait, then run fetch again "
            "(it resumes)."
        )
    if status >= 500:
        return (
            f"{what}: the portal failed ({status}) after {RETRIES} retries; it may be down. Run fetch again later "
            "(it resumes where it stopped)."
        )
    return f"{what}: unexpected HTTP status {status}."


def get_json(session: requests.Session, url: str, *, what: str, terms_url: str = "", auth=None, hint: str = ""):
    """GET a JSON document (a portal's API answer); an HTTP refusal becomes a :class:`PortalError`."""
    try:
        response = session.get(url, timeout=TIMEOUT, auth=auth)
    except requests.RequestException as err:
        raise PortalError(f"{what}: cannot reach {url}: {type(err).__name__}") from err
    if response.status_code != 200:
        raise PortalError(explain_status(response.status_code, what, terms_url=terms_url, hint=hint))
    try:
        return response.json()
    except ValueError as err:
        raise PortalError(f"{what}: {url} did not answer JSON") from err


@dataclass
class Downloaded:
    size: int
    sha256: str
    md5: str


def file_hashes(path: Path) -> Downloaded:
    """Size, sha256 and md5 of a file on disk, read in chunks."""
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    size = _hash_existing(path, [sha256, md5])
    return Downloaded(size, sha256.hexdigest(), md5.hexdigest())


def _hash_existing(part: Path, hashes: list) -> int:
    size = 0
    with open(part, "rb") as handle:
        while block := handle.read(CHUNK):
            size += len(block)
            for h in hashes:
                h.update(block)
    return size


def _total_of(response: requests.Response) -> int | None:
    """The whole file's size from ``Content-Range`` (``bytes 0-9/10`` or ``bytes */10``)."""
    match = re.fullmatch(r"bytes (?:\d+-\d+|\*)/(\d+)", response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


def _start_of(response: requests.Response) -> int | None:
    """Where a 206 answer starts, from its ``Content-Range`` (None when absent or malformed)."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


class _Hashing:
    """Hashes computed in a thread beside the download (hashlib releases the GIL on large buffers).

    sha256 and md5 in the download loop itself would cap a fetch at the slower hash's speed;
    here they overlap with the network. At most 8 chunks wait: memory stays bounded.
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self._hashes = {name: hashlib.new(name) for name in names}
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=HASH_QUEUE)
        self._thread = threading.Thread(target=self._run, name="download-hashing", daemon=True)
        self._thread.start()
        self._result: dict[str, str] | None = None

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            for digest in self._hashes.values():
                digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def close(self) -> dict[str, str]:
        if self._result is None:
            self._queue.put(None)
            self._thread.join()
            self._result = {name: digest.hexdigest() for name, digest in self._hashes.items()}
        return self._result


def _result(size: int, hashing: _Hashing) -> Downloaded:
    digests = hashing.close()
    return Downloaded(size, digests.get("sha256", ""), digests.get("md5", ""))


def download(
    session: requests.Session,
    url: str,
    part: Path,
    *,
    what: str,
    size: int | None = None,
    terms_url: str = "",
    auth=None,
    hint: str = "",
    progress: bool = True,
    digests: tuple[str, ...] = ("sha256", "md5"),
) -> Downloaded:
    """Download ``url`` into ``part``, resuming what an earlier attempt (or process) left there.

    ``size`` (the lock's) bounds the download: a server sending more is refused, and a
    ``part`` already that long is only hashed. Returns the size and the ``digests`` of the
    whole file (``md5`` is ``""`` when not asked for).
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    stalls = 0
    while True:
        hashing = _Hashing(digests)
        try:
            outcome = _attempt(session, url, part, hashing, what, size, terms_url, auth, hint, progress, stalls)
        finally:
            hashing.close()
        if isinstance(outcome, Downloaded):
            return outcome
        stalls = outcome
        if stalls >= STALLS:
            raise PortalError(
                f"{what}: the connection kept breaking or ending early ({STALLS} times without progress); run fetch "
                "again later (it resumes)"
            )


def _attempt(session, url, part, hashing, what, size, terms_url, auth, hint, progress, stalls) -> Downloaded | int:
    """One request: the whole file (a :class:`Downloaded`), or the new count of attempts without progress."""
    have = _hash_existing(part, [hashing]) if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        return stalls
    if size is not None and have == size:
        return _result(have, hashing)
    # identity: the bytes on disk must be the file's, so that Range offsets mean the same
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = session.get(url, stream=True, timeout=TIMEOUT, auth=auth, headers=headers)
    except requests.RequestException as err:
        raise PortalError(f"{what}: cannot reach {url}: {type(err).__name__}: {err}") from err
    with response:
        status = response.status_code
        if status == 416 and have:
            if _total_of(response) == have:  # the part already is the whole file
                return _result(have, hashing)
            part.unlink()  # the part is longer than the server's file: start again
            return stalls + 1
        if status not in (200, 206):
            raise PortalError(explain_status(status, what, terms_url=terms_url, hint=hint))
        if status == 206 and _start_of(response) != have:
            raise PortalError(f"{what}: the server answered a range request with the wrong range")
        if status == 200 and have:  # the server ignores ranges: the next attempt starts from byte 0
            part.unlink()
            return stalls + 1
        total = _total_of(response) if status == 206 else None
        if total is None and response.headers.get("Content-Length", "").isdigit():
            total = have + int(response.headers["Content-Length"])
        # the server's own size decides when the file is complete; a size other than the
        # lock's is reported by the caller's verification, naming the file
        total = size if total is None else total
        before = have
        try:
            have = _stream(response, part, have, hashing, size, what, total, progress)
        except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, urllib3.exceptions.HTTPError):
            return 0 if _size(part) > before else stalls + 1
    if total is not None and have < total:
        return 0 if have > before else stalls + 1
    return _result(have, hashing)


def _size(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


def _stream(response, part: Path, have: int, hashing: _Hashing, size, what, total, progress) -> int:
    mode = "ab" if have else "wb"
    with (
        open(part, mode) as out,
        tqdm(
            total=total,
            initial=have,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=what[:40],
            disable=not progress,
        ) as bar,
    ):
        # read1: whatever has arrived, up to CHUNK. read() would wait for a full chunk and
        # drop what it had when the connection is cut, so a cut would cost up to CHUNK
        while chunk := response.raw.read1(CHUNK):
            if size is not None and have + len(chunk) > size:
                raise PortalError(f"{what}: the server sent more than the {size} bytes the lock records")
            out.write(chunk)
            hashing.update(chunk)
            have += len(chunk)
            bar.update(len(chunk))
            checkpoint("fetch.chunk")
    return have
