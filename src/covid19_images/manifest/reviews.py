"""Reviewed duplicate pairs: a person's decision that two files are, or are not, one picture.

The near-duplicate search decides from a perceptual hash and a thumbnail check; close to its
thresholds it can be wrong both ways (two films of one patient a day apart, a re-encode with a
marker added). ``covid19-images browse --review`` shows those pairs side by side and appends a
decision to ``manifests/reviewed-pairs.csv``; the next ``sync`` honours it:

* ``different``: the near edge between the two files is dropped, so they are not merged into
  one duplicate group by that edge (if other copies still link them, sync reports it);
* ``same``: an edge is added between them, whatever the search measured.

Rows name the files by content (``sha256``), so a decision survives renames and moves and
stays true on every row that holds those bytes. The last row for a pair wins (a reviewer can
change their mind); who, when and why are kept. The file is tracked with the manifest and
its SHA-256 is part of what tells an incremental sync that something changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from covid19_images.core import atomic
from covid19_images.core.schema import Problem
from covid19_images.manifest.csv_text import frame_csv_bytes

REVIEWS_FILE = "manifests/reviewed-pairs.csv"
REVIEW_COLUMNS = (
    "sha256_a",
    "sha256_b",
    "decision",
    "reviewer",
    "reviewed_at",
    "reason",
    "image_id_a",
    "image_id_b",
)
DECISIONS = ("same", "different")
_HEX = frozenset("0123456789abcdef")


class ReviewError(ValueError):
    """A decision that cannot be recorded (unknown decision, malformed hash, no reviewer)."""


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and set(value) <= _HEX


def pair_key(sha_a: str, sha_b: str) -> tuple[str, str]:
    """The pair in a fixed order, so (a, b) and (b, a) are one decision."""
    return (sha_a, sha_b) if sha_a <= sha_b else (sha_b, sha_a)


@dataclass
class Reviews:
    """The decision in force for each reviewed pair of file hashes."""

    different: set[tuple[str, str]] = field(default_factory=set)
    same: set[tuple[str, str]] = field(default_factory=set)
    digest: str = ""  # SHA-256 of the file's bytes, "" when there is no file

    def decision(self, sha_a: str, sha_b: str) -> str:
        key = pair_key(sha_a, sha_b)
        return "different" if key in self.different else "same" if key in self.same else ""


def read_review_rows(root: Path) -> pd.DataFrame:
    """Every row of the reviewed-pairs file as text (an empty frame when there is none).

    Rows with a malformed hash or decision are dropped: a hand-edited file never breaks a sync.
    """
    path = Path(root) / REVIEWS_FILE
    empty = pd.DataFrame(columns=list(REVIEW_COLUMNS), dtype=object)
    if not path.is_file():
        return empty
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return empty
    frame = frame.reindex(columns=list(REVIEW_COLUMNS), fill_value="")
    if frame.empty:  # a header alone: the masks below would be untyped empty columns, which cannot be and-ed
        return empty
    valid = (
        frame["sha256_a"].map(_is_sha256)
        & frame["sha256_b"].map(_is_sha256)
        & frame["decision"].isin(DECISIONS)
        & (frame["sha256_a"] != frame["sha256_b"])
    )
    return frame[valid].reset_index(drop=True)


def read_reviews(root: Path) -> Reviews:
    """The decisions in force (the last row for each pair wins) and the file's digest."""
    path = Path(root) / REVIEWS_FILE
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    reviews = Reviews(digest=digest)
    frame = read_review_rows(root)
    latest: dict[tuple[str, str], str] = {}
    for sha_a, sha_b, decision in zip(frame["sha256_a"], frame["sha256_b"], frame["decision"], strict=True):
        latest[pair_key(sha_a, sha_b)] = decision
    for key, decision in latest.items():
        (reviews.different if decision == "different" else reviews.same).add(key)
    return reviews


def append_review(
    root: Path,
    sha_a: str,
    sha_b: str,
    decision: str,
    *,
    reviewer: str,
    reason: str = "",
    image_ids: tuple[str, str] = ("", ""),
    now: datetime | None = None,
) -> dict[str, str]:
    """Append one decision (atomically: the file is rewritten whole) and return the row written."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if not (_is_sha256(sha_a) and _is_sha256(sha_b)) or sha_a == sha_b:
        raise ReviewError("a reviewed pair names two different files by their sha256")
    reviewer = " ".join(reviewer.split())
    if not reviewer:
        raise ReviewError("say who reviewed the pair (reviewer)")
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    first, second = pair_key(sha_a, sha_b)
    ids = image_ids if first == sha_a else (image_ids[1], image_ids[0])
    row = {
        "sha256_a": first,
        "sha256_b": second,
        "decision": decision,
        "reviewer": reviewer[:200],
        "reviewed_at": when,
        "reason": " ".join(reason.split())[:2000],
        "image_id_a": ids[0],
        "image_id_b": ids[1],
    }
    frame = pd.concat([read_review_rows(root), pd.DataFrame([row])], ignore_index=True)
    atomic.write_atomic(Path(root) / REVIEWS_FILE, frame_csv_bytes(frame[list(REVIEW_COLUMNS)]))
    return row


def overridden_problems(manifest: pd.DataFrame, overruled: list) -> list[Problem]:
    """A pair reviewed as different that other copies still join: say so (the review cannot cut them apart)."""
    found = []
    groups = manifest["dup_group"].to_numpy()
    for edge in overruled:
        a, b = manifest.iloc[edge.a], manifest.iloc[edge.b]
        if groups[edge.a] and groups[edge.a] == groups[edge.b]:
            message = (
                f"reviewed as different pictures ({REVIEWS_FILE}) from {b['source']} {b['path']}, but other "
                f"copies still join them in duplicate group {groups[edge.a]}"
            )
            inside = str(a["path"]).split("/", 2)[-1]  # problems name files inside datasets/<source>/
            found.append(Problem(str(a["source"]), message, path=inside, level="info"))
    return found
