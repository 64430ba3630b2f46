"""``manifests/sync.json``: a machine-readable record of the last sync that changed or refused something.

Until this file, a sync's summary existed only as text: printed, and in the message of a
``sync --commit`` commit. ``release`` needs it as data, for what the manifests cannot show:
upstream updates that were *refused* (a force-pushed history, a source that would lose most
of its images) or failed, and the notes a sync made. The numbers of a changelog (images
added, removed, relabelled, moved) are *not* summed from these records: ``release`` takes
them from the manifests at the two tags (:mod:`covid19_images.release.changes`), which is
exact whatever happened in between (syncs not committed one by one, a later sync undoing an
earlier one, a rebuild with ``--rebuild``).

The record carries no clock, no user and no pid, so a sync that finds the same state writes
the same bytes (git sees no change); a sync that changed nothing and refused nothing leaves
the previous record in place. It is written atomically and committed by ``sync --commit``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from covid19_images.core.atomic import write_atomic
from covid19_images.manifest.diff import SourceChange

SYNC_RECORD_FILE = "manifests/sync.json"
RECORD_FORMAT = 1


def record_of(report: Any) -> dict[str, Any]:
    """The JSON-ready record of one sync (a ``sync.run.SyncReport``, not imported: ``run`` imports this module).

    Per source its pin move, status and counts; the split moves; the notes.
    """
    updates = {u.name: u for u in report.updates}
    names = list(dict.fromkeys([u.name for u in report.updates] + sorted(report.changes)))
    sources = []
    for name in names:
        update = updates.get(name)
        change = report.changes.get(name, SourceChange(name))
        sources.append(
            {
                "source": name,
                "old": update.old if update else None,
                "new": update.new if update else None,
                "status": update.status if update else "rebuilt",
                "message": update.message if update else "",
                "added": len(change.added),
                "removed": len(change.removed),
                "relabelled": len(change.relabelled),
                "split_moved": len(change.moved),
            }
        )
    return {
        "format": RECORD_FORMAT,
        "sources": sources,
        "split_moves": [
            {"source": m.source, "path": m.path, "old": m.old_split, "new": m.new_split, "reason": m.reason}
            for m in report.split_moves
        ],
        "notes": list(report.notes),
    }


def worth_recording(record: dict[str, Any]) -> bool:
    """True when the sync moved a pin, changed a row, or refused or failed a source."""
    for item in record["sources"]:
        if item["status"] in ("added", "refused", "failed") or item["old"] != item["new"]:
            return True
        if item["added"] or item["removed"] or item["relabelled"] or item["split_moved"]:
            return True
    return bool(record["split_moves"])


def write_sync_record(root: Path, report: Any) -> bool:
    """Write ``manifests/sync.json`` for ``report`` if it is worth recording; True when written."""
    record = record_of(report)
    if not worth_recording(record):
        return False
    data = (json.dumps(record, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    path = Path(root) / SYNC_RECORD_FILE
    if path.is_file() and path.read_bytes() == data:
        return False
    write_atomic(path, data)
    return True


def read_sync_record(data: bytes | None) -> dict[str, Any] | None:
    """A record's bytes (from disk or a commit) as a dict; None when absent or not a record this code reads."""
    if not data:
        return None
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return None
    return record
