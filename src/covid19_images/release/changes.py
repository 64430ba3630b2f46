"""What changed between two commits of a root (a release tag and HEAD, or two tags).

The numbers come from the manifests *at the two commits*, not from adding up the sync
summaries in between: that is exact whatever happened between them (syncs that were not
committed one by one, a later sync undoing an earlier one's additions, a ``--rebuild``, a
hand-made rebuild). What the manifests cannot show, the upstream updates that were *refused*
or *failed* and the notes a sync made, comes from the ``manifests/sync.json`` records
committed in between (:mod:`covid19_images.sync.record`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import git
import pandas as pd

from covid19_images.manifest.diff import SourceChange, diff_manifests
from covid19_images.manifest.splits import SplitMove, explain_split_moves
from covid19_images.manifest.versions import file_at, manifest_in, pins_at, problems_in
from covid19_images.sync.record import SYNC_RECORD_FILE, read_sync_record

_PROBLEM_COLUMNS = ["level", "source", "path", "row", "message"]
#: a problem is the same problem when only its metadata line moved (upstream added rows above it)
_PROBLEM_KEY = ["level", "source", "path", "message"]


@dataclass
class SourceDelta:
    """One source between the two commits."""

    source: str
    old_pin: str | None
    new_pin: str | None
    images_before: int
    images_after: int
    change: SourceChange
    split_moves: list[SplitMove] = field(default_factory=list)
    new_problems: list[dict[str, str]] = field(default_factory=list)
    resolved_problems: int = 0

    @property
    def status(self) -> str:
        if self.old_pin is None and self.images_before == 0:
            return "new"
        if self.new_pin is None and self.images_after == 0:
            return "removed"
        return "moved" if self.old_pin != self.new_pin else "same"

    @property
    def changed(self) -> bool:
        return (
            self.status != "same"
            or self.change.changed
            or bool(self.split_moves or self.new_problems)
            or (self.resolved_problems > 0)
        )


@dataclass
class Changes:
    """Everything between ``old`` (None: the beginning) and ``new``."""

    old: str | None
    new: str
    before: pd.DataFrame | None
    after: pd.DataFrame
    sources: dict[str, SourceDelta]
    refusals: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _resolve(repo: git.Repo, rev: str) -> git.Commit:
    return repo.commit(rev)


def _only_in(frame: pd.DataFrame, other: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of ``frame`` (problems) whose level, source, path and message ``other`` does not have."""
    if other is None or other.empty:
        return frame
    seen = set(map(tuple, other[_PROBLEM_KEY].astype(str).to_numpy()))
    mask = [tuple(row) not in seen for row in frame[_PROBLEM_KEY].astype(str).to_numpy()]
    return frame[mask]


def _sync_records(repo: git.Repo, old: str | None, new: str) -> tuple[list[dict[str, str]], list[str]]:
    """Refused/failed updates and notes from every committed ``sync.json`` between the commits, oldest first."""
    revs = f"{old}..{new}" if old else new
    refusals: list[dict[str, str]] = []
    notes: list[str] = []
    for commit in reversed(list(repo.iter_commits(revs, paths=SYNC_RECORD_FILE))):
        record = read_sync_record(file_at(commit, SYNC_RECORD_FILE))
        if record is None:
            continue
        for item in record.get("sources", []):
            if item.get("status") in ("refused", "failed"):
                entry = {k: str(item.get(k) or "") for k in ("source", "status", "message", "old")}
                if entry not in refusals:
                    refusals.append(entry)
        notes += [str(n) for n in record.get("notes", []) if str(n) not in notes]
    return refusals, notes


def collect_changes(root: Path, old: str | None, new: str = "HEAD") -> Changes:
    """The changes from ``old`` (a tag or commit; None for the first release) to ``new``."""
    repo = git.Repo(root)
    new_commit = _resolve(repo, new)
    old_commit = _resolve(repo, old) if old else None
    before = manifest_in(old_commit, old) if old_commit is not None and old else None
    after = manifest_in(new_commit, new)
    if after is None:
        raise FileNotFoundError(f"{new} of {root} holds no manifest: run `covid19-images sync --commit` first")
    changes = diff_manifests(before, after)
    moves = explain_split_moves(before, after)
    problems_before = problems_in(old_commit) if old_commit is not None else None
    problems_after = problems_in(new_commit)
    problems_new = _only_in(problems_after, problems_before)
    problems_gone = _only_in(problems_before, problems_after) if problems_before is not None else problems_after[0:0]
    resolved = problems_gone["source"].value_counts().to_dict()
    old_pins = pins_at(old_commit) if old_commit is not None else {}
    new_pins = pins_at(new_commit)
    counts_before = before["source"].value_counts().to_dict() if before is not None else {}
    counts_after = after["source"].value_counts().to_dict()
    names = sorted(set(old_pins) | set(new_pins) | set(counts_before) | set(counts_after) | set(changes))
    sources = {
        name: SourceDelta(
            source=name,
            old_pin=old_pins.get(name),
            new_pin=new_pins.get(name),
            images_before=int(counts_before.get(name, 0)),
            images_after=int(counts_after.get(name, 0)),
            change=changes.get(name, SourceChange(name)),
            split_moves=[m for m in moves if m.source == name],
            new_problems=problems_new[problems_new["source"] == name][_PROBLEM_COLUMNS].astype(str).to_dict("records"),
            resolved_problems=int(resolved.get(name, 0)),
        )
        for name in names
    }
    refusals, notes = _sync_records(repo, old, new_commit.hexsha)
    return Changes(old, new, before, after, sources, refusals, notes)
