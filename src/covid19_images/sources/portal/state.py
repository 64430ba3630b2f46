"""Whether a portal source is fetched: a marker written last, inside the folder it describes.

``datasets/<name>/.covid19-images-fetched`` (JSON) names the lock digest the folder was built
from and, per lock entry, its sha256 and the files it put there. The folder is built beside
(``datasets/.<name>.staging-*``) with the marker in it, then renamed into place, so a folder
at ``datasets/<name>`` either has a marker that matches what is in it or is not complete. A
source is *fetched* when the marker's digest is the current lock's and it holds every entry.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from covid19_images.core.paths import DATASETS_DIR
from covid19_images.sources.portal.lock import PortalLock, current_digest, read_lock

MARKER = ".covid19-images-fetched"


@dataclass
class FetchState:
    lock: str = ""
    #: lock path -> {"sha256": ..., "files": [paths relative to the source folder]}
    entries: dict[str, dict] = field(default_factory=dict)

    def has(self, path: str, sha256: str) -> bool:
        return self.entries.get(path, {}).get("sha256") == sha256


def source_dir(root: Path, name: str) -> Path:
    return Path(root) / DATASETS_DIR / name


def read_state(folder: Path) -> FetchState:
    """The marker of ``folder``; an empty state when absent or unreadable (the folder is then incomplete)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return FetchState(str(data["lock"]), {str(k): dict(v) for k, v in data["entries"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return FetchState()


def write_state(folder: Path, state: FetchState) -> None:
    data = json.dumps({"lock": state.lock, "entries": state.entries}, sort_keys=True).encode("utf-8")
    with open(folder / MARKER, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


@dataclass(frozen=True)
class Presence:
    """How much of a portal source is on disk."""

    fetched: int
    total: int
    complete: bool
    digest: str


def presence(root: Path, name: str, lock: PortalLock | None = None) -> Presence:
    """Entries of the current lock present in ``datasets/<name>``, and whether that is all of them."""
    lock = lock if lock is not None else read_lock(root, name)
    digest = current_digest(root, name)
    if lock is None:
        return Presence(0, 0, False, "")
    state = read_state(source_dir(root, name))
    have = sum(1 for e in lock.entries if state.has(e.path, e.sha256))
    return Presence(have, len(lock.entries), have == len(lock.entries) and state.lock == digest, digest)
