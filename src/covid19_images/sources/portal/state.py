"""Whether a portal source is fetched: a marker written last, inside the folder it describes.

``datasets/<name>/.covid19-images-fetched`` (JSON) names the lock digest the folder was built
from and, per lock entry, its sha256, the files it put there and their sizes. The folder is
built beside (``datasets/.<name>.staging-*``) with the marker in it, then renamed into place, so
a folder at ``datasets/<name>`` either has a marker that matches what is in it or is not
complete. A source is *fetched* when the marker's digest is the current lock's, it holds every
entry, and every file the marker lists is still there at its size (one ``stat`` per file: a
deleted or truncated file is noticed without reading it; ``verify`` re-hashes the contents).
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
    #: lock path -> {"sha256": ..., "files": [paths relative to the source folder], "sizes": {file: bytes}}
    entries: dict[str, dict] = field(default_factory=dict)

    def has(self, path: str, sha256: str) -> bool:
        return self.entries.get(path, {}).get("sha256") == sha256

    def damaged(self, folder: Path, path: str) -> list[str]:
        """Files lock entry ``path`` put in ``folder`` that are gone or not at their recorded size."""
        entry = self.entries.get(path, {})
        sizes = entry.get("sizes") or {}
        found = []
        for name in entry.get("files", []):
            try:
                size = (folder / name).stat().st_size
            except OSError:
                found.append(str(name))
                continue
            if name in sizes and size != sizes[name]:
                found.append(str(name))
        return found


def file_sizes(folder: Path, files: list[str]) -> dict[str, int]:
    """``{file: bytes}`` of files just written under ``folder`` (what the marker records)."""
    return {name: (folder / name).stat().st_size for name in files}


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
    #: files of fetched entries that are gone or changed size since the fetch (relative to the source folder)
    damaged: tuple[str, ...] = ()

    def hint(self, name: str) -> str:
        """What sync says of a source that is not complete here (``""`` when it is)."""
        if self.complete:
            return ""
        if self.damaged:
            return (
                f"{len(self.damaged)} fetched file(s) deleted or changed since the fetch (e.g. "
                f"datasets/{name}/{self.damaged[0]}): run `covid19-images fetch {name}` to restore them"
            )
        if not self.total:  # no lock: nothing to fetch until a maintainer pins the portal's files
            return f"not pinned: run `covid19-images sync --update-portal {name}`"
        return f"not fetched here: `covid19-images fetch {name}`"

    def unread_message(self, name: str, kept: int) -> str:
        """Why the build did not read the source, and the command that changes it; its committed rows stay."""
        if self.damaged:
            what = self.hint(name)
        elif not self.total:
            what = f"no lock yet; a maintainer pins it with `covid19-images sync --update-portal {name}`"
        elif self.fetched:
            what = f"partly fetched ({self.fetched} of {self.total} files); run `covid19-images fetch {name}`"
        else:
            what = f"not fetched; run `covid19-images fetch {name}`"
        return what + (f" (kept its {kept} rows from the previous manifest)" if kept else "")


def presence(root: Path, name: str, lock: PortalLock | None = None) -> Presence:
    """Entries of the current lock present in ``datasets/<name>``, and whether that is all of them."""
    lock = lock if lock is not None else read_lock(root, name)
    digest = current_digest(root, name)
    if lock is None:
        return Presence(0, 0, False, "")
    folder = source_dir(root, name)
    state = read_state(folder)
    held = [e for e in lock.entries if state.has(e.path, e.sha256)]
    damaged = tuple(f for e in held for f in state.damaged(folder, e.path))
    complete = len(held) == len(lock.entries) and state.lock == digest and not damaged
    return Presence(len(held), len(lock.entries), complete, digest, damaged)
