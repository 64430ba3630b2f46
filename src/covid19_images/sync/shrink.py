"""Refuse a sync that would drop most of a source: its metadata deleted, emptied or made unreadable upstream.

Without this, ``metadata.csv`` deleted upstream (or replaced by a binary file) drops every
image of that source with exit 0 and one summary line, and a cron mirror publishes the
loss. A source that would lose more than half of its rows (and at least
:data:`MIN_ROWS`) is refused instead: its checkout goes back to the commit its rows were
built from, it keeps its previous rows, and the summary says why (the source's own error
problems, e.g. "no metadata.csv in checkout"). ``--allow-shrink`` accepts the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git
import pandas as pd

from covid19_images.manifest.build import BuildResult
from covid19_images.sources.git import SourceUpdate
from covid19_images.sources.registry import SourceSpec

#: A source with fewer previous rows than this may shrink freely (tiny and test sources churn).
MIN_ROWS = 4
#: The share of a source's previous rows it may lose in one sync.
MAX_LOSS = 0.5


@dataclass(frozen=True)
class Shrink:
    source: str
    before: int
    after: int
    why: str
    what: str = "labelled images"

    def message(self) -> str:
        return (
            f"would drop {self.before - self.after} of its {self.before} {self.what} ({self.why}); refused, "
            "kept its previous rows and checkout (use --allow-shrink to accept)"
        )


def _counts(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Rows per source, and rows with a known label per source."""
    return frame["source"].value_counts(), frame.loc[frame["label"] != "unknown", "source"].value_counts()


def find_shrinks(previous: pd.DataFrame | None, build: BuildResult, keep: set[str]) -> list[Shrink]:
    """Sources of ``build`` that lost more than :data:`MAX_LOSS` of their rows, or of their labelled
    rows, in ``previous``.

    Both counts matter: a source whose rows all turn "unknown" has lost them as surely as deleted
    ones, and a source whose rows are all "unknown" (no labels upstream, e.g. a CT collection
    labelled per study elsewhere) must still be guarded when its files vanish.
    """
    if previous is None or previous.empty:
        return []
    rows_before, labelled_before = _counts(previous)
    rows_after, labelled_after = _counts(build.manifest)
    found: list[Shrink] = []
    for source in rows_before.index:
        if source not in build.commits or source in keep:  # removed on purpose, not checked out, or allowed
            continue
        for before, after, what in (
            (labelled_before, labelled_after, "labelled images"),
            (rows_before, rows_after, "images"),
        ):
            count, now = int(before.get(source, 0)), int(after.get(source, 0))
            if count < MIN_ROWS or now >= count * (1 - MAX_LOSS):
                continue
            errors = [p.message for p in build.problems if p.source == source and p.level == "error"]
            why = "; ".join(list(dict.fromkeys(errors))[:2]) or "its parser now yields far fewer rows"
            found.append(Shrink(str(source), count, now, why[:300], what))
            break
    return found


def restore_checkout(root: Path, spec: SourceSpec, update: SourceUpdate | None, previous: pd.DataFrame) -> str | None:
    """Put the refused source's checkout back on the commit its kept rows were built from (a note if that fails)."""
    if spec.is_portal:
        return (
            f"{spec.name}: kept its previous rows; its lock (manifests/locks/{spec.name}.lock.tsv) is new: review "
            "it, and restore the old one with git if the change is wrong"
        )
    commits = sorted({c for c in previous.loc[previous["source"] == spec.name, "source_commit"] if c})
    target = (update.old if update is not None and update.old else None) or (commits[0] if commits else None)
    if not target:
        return None
    try:
        git.Repo(Path(root) / spec.path).git.checkout("-q", "--detach", target)
        git.Repo(root).git.add("--", spec.path)  # the gitlink sync staged goes back too
    except (git.GitError, OSError) as err:
        return f"{spec.name}: could not put its checkout back on {target[:12]} ({err}); check it out by hand"
    return None
