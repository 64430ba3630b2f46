"""An integrity record beside the manifest, and the check every reader makes against it.

A manifest that went through a failed ``git merge`` (conflict markers: one image served
twice, as ``normal`` and as ``pneumonia``), was cut short by a full disk or a bad copy, or
was edited by hand must never load silently. Every write of ``manifest.csv`` first writes
``manifest.csv.integrity`` (JSON: sha256 and row count of the new manifest, plus those of
the manifest it replaces, so a sync killed between the two renames still leaves a pair
that checks). Readers refuse a manifest that matches neither with :class:`DamagedManifest`
naming the file and what is wrong. A missing record is not "no check": deleting the record
and then editing the file would otherwise be served silently, so readers refuse a manifest
without one (:class:`MissingRecord`, with the command that writes it). Only sync, which
rebuilds the file from the checkouts, reads a record-less manifest (``missing_ok``), after
the checks the text alone allows: conflict markers and rows whose field count differs from
the header's.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
from pathlib import Path

from covid19_images.core.atomic import write_atomic

RECORD_SUFFIX = ".integrity"
_MARKERS = (b"<<<<<<< ", b"<<<<<<<\n", b"=======\n", b">>>>>>> ", b">>>>>>>\n", b"||||||| ")


class DamagedManifest(ValueError):
    """The manifest on disk is not one that a sync wrote; the message names it and says why."""


class MissingRecord(DamagedManifest):
    """The manifest has no integrity record, so nothing tells an edited file from a synced one."""


def record_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + RECORD_SUFFIX)


#: CSV fields of any length: a long ``extra`` value must not make a good manifest look damaged.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _rows(data: bytes) -> int:
    try:
        return max(0, sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))) - 1)
    except (UnicodeDecodeError, csv.Error):
        return -1


def _facts(data: bytes, digest: str | None = None) -> dict[str, object]:
    return {"sha256": digest or hashlib.sha256(data).hexdigest(), "rows": _rows(data)}


#: A file modified this recently may change again within its timestamps' granularity (a clock
#: tick: 1-10 ms) without its identity showing it, so such an identity vouches for nothing ("racy
#: git" in git's terms).
RACY_NS = 1_000_000_000


def file_identity(status: os.stat_result) -> tuple[int, ...]:
    """What tells one state of a file from another without reading it (as git's index does):
    device, inode, size, and the modification and change times in nanoseconds."""
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def settled_identity(status: os.stat_result, now_ns: int) -> tuple[int, ...] | None:
    """:func:`file_identity` of a file last changed well before ``now_ns`` (any later change gets a
    later timestamp), or None for one changed too recently to be told apart from a change to come."""
    if max(status.st_mtime_ns, status.st_ctime_ns) >= now_ns - RACY_NS:
        return None
    return file_identity(status)


def write_record(
    manifest: Path, data: bytes, rows: int | None = None, read: tuple[str, tuple[int, ...]] | None = None
) -> str:
    """Record ``data`` (the manifest about to be written) and the manifest on disk now, atomically.

    Returns the SHA-256 of ``data`` it recorded (the caller need not hash the bytes again).

    ``rows``: the records ``data`` holds, when the caller knows (the frame it wrote); otherwise
    they are counted. The manifest on disk, once checked, takes its facts from the record that
    vouched for it: neither file is parsed as CSV.

    ``read``: the digest :func:`check` gave the manifest on disk when the caller read it, and the
    :func:`file_identity` it had then. While the file still has that identity it is not read and
    hashed again (0.13 s at 200,000 rows); a file changed since is checked as any other.
    """
    manifest = Path(manifest)
    new = {"sha256": hashlib.sha256(data).hexdigest(), "rows": _rows(data) if rows is None else rows}
    record: dict[str, object] = {"manifest": manifest.name, **new}
    try:
        facts = None
        if read is not None and file_identity(manifest.stat()) == read[1]:
            facts = _recorded(manifest, read[0])
        if facts is None:  # only a manifest that checks may stand in for this one (a sync killed mid-write)
            old = manifest.read_bytes()
            digest = check(manifest, old)
            facts = _recorded(manifest, digest) or _facts(old, digest)
        record["previous"] = facts
    except (OSError, DamagedManifest):
        pass
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    write_atomic(record_path(manifest), text.encode("utf-8"))
    return str(new["sha256"])


def _recorded(manifest: Path, digest: str | None) -> dict[str, object] | None:
    """The facts the record on disk gives for the bytes hashing to ``digest`` (None if it has none)."""
    try:
        record = json.loads(record_path(manifest).read_text(encoding="utf-8"))
        items = [record, record.get("previous")]
    except (OSError, ValueError, AttributeError):
        return None
    for item in items:
        if isinstance(item, dict) and digest and item.get("sha256") == digest and isinstance(item.get("rows"), int):
            return {"sha256": digest, "rows": item["rows"]}
    return None


def _text_damage(data: bytes) -> str | None:
    """What the bytes alone show is wrong (conflict markers, ragged or cut rows), or None."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.startswith(_MARKERS) or line in (b"<<<<<<<", b"=======", b">>>>>>>"):
            return f"line {number} is a git merge-conflict marker ({line[:20].decode('utf-8', 'replace')!r})"
    if data and not data.endswith(b"\n"):
        return "the last line is incomplete (file cut short)"
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        header = next(reader, [])
        for record in reader:
            if len(record) != len(header):
                fields = f"{len(record)} fields, the header {len(header)}"
                return f"line {reader.line_num} has {fields} (truncated or edited row)"
    except (UnicodeDecodeError, csv.Error) as err:
        return f"not a readable UTF-8 CSV ({err})"
    return None


def _refuse_damaged_text(manifest: Path, data: bytes, fix: str) -> None:
    damage = _text_damage(data)
    if damage:
        raise DamagedManifest(f"{manifest} is damaged: {damage}; {fix}")


#: ``check``'s default: read the integrity record beside the manifest on disk
ON_DISK = object()


def check(
    manifest: Path, data: bytes, record_text: str | object | None = ON_DISK, *, missing_ok: bool = False
) -> str | None:
    """Raise :class:`DamagedManifest` unless ``data`` (the bytes of ``manifest``) is a manifest a sync wrote.

    Returns the SHA-256 of ``data`` when it was compared with a record (None when there was no
    record), so a reader that needs the hash (a loader's :class:`ManifestStamp`) need not hash
    the file a second time.

    ``record_text`` is the integrity record to check against when it does not come from disk
    (a released version read from git: :mod:`covid19_images.manifest.versions`; git's own object
    hashes already prove a tagged file unchanged, so None, a tag without a record, is accepted).
    On disk, a missing record raises :class:`MissingRecord` unless ``missing_ok`` (sync's own
    reading of the file it is about to rebuild: the text checks still apply).
    """
    fix = (
        "restore it (`git checkout -- manifests/`) or rebuild it with `covid19-images sync --offline` "
        "(which keeps the damaged file aside)"
    )
    digest = hashlib.sha256(data).hexdigest()
    try:
        if record_text is ON_DISK:
            record_text = record_path(manifest).read_text(encoding="utf-8")
        record = None if record_text is None else json.loads(record_text)  # type: ignore[arg-type]
    except FileNotFoundError:
        _refuse_damaged_text(manifest, data, fix)
        if missing_ok:
            return None
        raise MissingRecord(
            f"{manifest} has no integrity record ({record_path(manifest).name}): nothing shows whether it was "
            "edited since the last sync, so it is not used; run `covid19-images sync --offline` to rebuild it "
            "from the checkouts and record it (or `git checkout -- manifests/` if the record was deleted)"
        ) from None
    except (OSError, ValueError) as err:
        _refuse_damaged_text(manifest, data, fix)
        raise DamagedManifest(
            f"{record_path(manifest)} (integrity record of {manifest}) is unreadable: {err}; {fix}"
        ) from err
    if record is not None:
        accepted = [record] + ([record["previous"]] if isinstance(record.get("previous"), dict) else [])
        if any(digest == item.get("sha256") for item in accepted if isinstance(item, dict)):
            return digest  # the very bytes a sync wrote (and checked): no need to read them as text again
    _refuse_damaged_text(manifest, data, fix)
    if record is None:
        return None
    facts = _facts(data, digest)  # the row count (a full CSV parse) is only needed to explain a mismatch
    raise DamagedManifest(
        f"{manifest} does not match its integrity record {record_path(manifest).name} "
        f"({facts['rows']} rows, sha256 {str(facts['sha256'])[:12]}…; recorded {record.get('rows')} rows, "
        f"sha256 {str(record.get('sha256'))[:12]}…): edited, merged or cut short since the last sync; {fix}"
    )
