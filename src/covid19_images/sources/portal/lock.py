"""The lock of a portal source: what a submodule's gitlink is to a git source.

``manifests/locks/<name>.lock.tsv`` belongs to the data root (like a gitlink, it is committed
with the manifest it produced). A few ``# key: value`` header lines say which source, portal,
dataset and version it pins; then one tab-separated line per downloaded file or series::

    path    size    portal_hash    sha256    locator

``path`` is where the download is kept (relative, plain: the archive's name, or
``<PatientID>/<StudyUID>/<SeriesUID>.zip`` for a TCIA series), ``size`` its bytes,
``portal_hash`` what the portal publishes (``md5:<hex>``, ``sha1:<hex>``, or empty), ``sha256``
our own hash of the bytes, ``locator`` the canonical URL it is requested from (before any
``insteadOf`` rewriting). The manifest's ``source_commit`` of a portal source is the SHA-256
of the lock file's bytes (:func:`lock_digest`): a new lock is a new commit, a reviewer sees it
change in the diff.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from covid19_images.core.atomic import write_atomic
from covid19_images.core.paths import lexical_problem

LOCKS_DIR = "manifests/locks"
COLUMNS = ("path", "size", "portal_hash", "sha256", "locator")
HEADER_KEYS = ("source", "portal", "dataset", "version")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PORTAL_HASH = re.compile(r"(md5:[0-9a-f]{32}|sha1:[0-9a-f]{40}|sha256:[0-9a-f]{64})?")


class LockError(ValueError):
    """A lock file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class LockEntry:
    """One downloaded file or series, pinned."""

    path: str
    size: int
    portal_hash: str
    sha256: str
    locator: str


@dataclass(frozen=True)
class PortalLock:
    source: str
    portal: str
    dataset: str
    version: str
    entries: tuple[LockEntry, ...]

    def to_bytes(self) -> bytes:
        lines = ["# covid19-images portal lock: one line per downloaded file or series (see CONTRIBUTING.md)"]
        lines += [f"# {key}: {getattr(self, key)}" for key in HEADER_KEYS]
        lines.append("\t".join(COLUMNS))
        for e in sorted(self.entries, key=lambda item: item.path):
            lines.append("\t".join((e.path, str(e.size), e.portal_hash, e.sha256, e.locator)))
        return ("\n".join(lines) + "\n").encode("utf-8")

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.entries)

    def by_path(self) -> dict[str, LockEntry]:
        return {e.path: e for e in self.entries}


def lock_path(root: Path, name: str) -> Path:
    return Path(root) / LOCKS_DIR / f"{name}.lock.tsv"


def lock_digest(data: bytes) -> str:
    """The ``source_commit`` of a portal source: SHA-256 of its lock file's bytes."""
    return hashlib.sha256(data).hexdigest()


def _field(value: str, where: str, what: str) -> str:
    if any(ord(c) < 0x20 for c in value):
        raise LockError(f"{where}: {what} holds control characters")
    return value


def parse_lock(data: bytes, where: str) -> PortalLock:
    """Read a lock file's bytes; every malformed line is a :class:`LockError` naming it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LockError(f"{where}: not UTF-8 ({err})") from err
    header: dict[str, str] = {}
    entries: list[LockEntry] = []
    seen_columns = False
    paths: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        at = f"{where}:{number}"
        if not line.strip():
            continue
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep and key.strip() in HEADER_KEYS:
                header[key.strip()] = _field(value.strip(), at, key.strip())
            continue
        cells = line.split("\t")
        if not seen_columns:
            if tuple(cells) != COLUMNS:
                raise LockError(f"{at}: expected the column line {' '.join(COLUMNS)!r}")
            seen_columns = True
            continue
        if len(cells) != len(COLUMNS):
            raise LockError(f"{at}: expected {len(COLUMNS)} tab-separated fields, found {len(cells)}")
        path, size, portal_hash, sha256, locator = (_field(c, at, n) for c, n in zip(cells, COLUMNS, strict=True))
        problem = lexical_problem(path)
        if problem:
            raise LockError(f"{at}: {problem}")
        if not size.isdigit():
            raise LockError(f"{at}: size {size!r} is not a number of bytes")
        if not _SHA256.fullmatch(sha256) or not _PORTAL_HASH.fullmatch(portal_hash):
            raise LockError(f"{at}: sha256 must be 64 hex digits and portal_hash md5:/sha1:/sha256:<hex> or empty")
        if path in paths:
            raise LockError(f"{at}: {path} is listed twice")
        paths.add(path)
        entries.append(LockEntry(path, int(size), portal_hash, sha256, locator))
    if not seen_columns:
        raise LockError(f"{where}: no column line {' '.join(COLUMNS)!r}")
    return PortalLock(
        header.get("source", ""),
        header.get("portal", ""),
        header.get("dataset", ""),
        header.get("version", ""),
        tuple(entries),
    )


def read_lock(root: Path, name: str) -> PortalLock | None:
    """The lock of source ``name`` under ``root``, or None when it has none yet."""
    file = lock_path(root, name)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return None
    return parse_lock(data, f"{LOCKS_DIR}/{file.name}")


def current_digest(root: Path, name: str) -> str:
    """:func:`lock_digest` of the lock on disk, or ``""`` without one."""
    try:
        return lock_digest(lock_path(root, name).read_bytes())
    except FileNotFoundError:
        return ""


def write_lock(root: Path, lock: PortalLock) -> str:
    """Write the lock atomically; return its digest (the new ``source_commit``)."""
    data = lock.to_bytes()
    write_atomic(lock_path(root, lock.source), data)
    return lock_digest(data)
