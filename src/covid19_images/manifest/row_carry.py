"""A changed source's unchanged rows, carried from the previous manifest instead of rebuilt.

An upstream that adds one row to a 50,000-row table used to cost 50,000 entries turned into
manifest rows again (about 1.4 s of a one-image sync): its parser replays them from the row memo
(:mod:`covid19_images.sources.row_memo`), but each still became an object, a tuple and a frame
row. A replayed row whose entries all gave manifest rows last time gives the same rows again when
nothing they are made of moved, so those rows are taken from the previous manifest as one slice,
with only the source's commit column set anew.

What a manifest row is made of: the recorded entry (same row digest: cells, header, parser
function and arguments; same code, registry entry and settings: the memo's key), the file's git
blob (compared with the checkout's, which must hold the file unmodified) and the facts probed
from that blob. That the previous manifest's row at the path is the one that entry gave is known
from the build that wrote it: the memo records which rows' entries all gave a row, under a token
that the source cache records too (``SourceEntry.memo``); the cache is used only with the
manifest whose bytes it was saved with. A manifest that is not the memo's build (restored from
git, edited by hand, written by a build that died after saving its memo) fails that match, and
the source is built in full. ``sync --rebuild`` carries nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from covid19_images.core.schema import ROW_COLUMNS, Entry
from covid19_images.manifest.io import rows_at, text_dtype
from covid19_images.sources.row_blocks import MemoBlock
from covid19_images.sources.row_memo import PATH_AT


class RowCarry:
    """Which of a source's replayed entries can take their row from the previous manifest.

    ``previous`` holds the source's rows of the previous manifest, written by the build whose
    memo recorded ``landed`` (the digests of rows all of whose entries gave a row); ``blobs`` and
    ``modified`` are the checkout's tracked blob ids and locally modified paths; ``files`` its files.
    """

    def __init__(
        self,
        folder: str,
        previous: pd.DataFrame,
        landed: set[bytes],
        files: set[str],
        blobs: dict[str, str],
        modified: set[str],
    ) -> None:
        self.folder = folder
        self.previous = previous
        self.landed = landed
        self.files, self.blobs, self.modified = files, blobs, modified
        self._at: dict[str, int] | None = None
        self._blobs: list[str] = []

    def _index(self) -> dict[str, int]:
        """Path inside the source folder -> position in ``previous`` (built on first use)."""
        if self._at is None:
            cut = len(self.folder) + 1
            self._at = {path[cut:]: at for at, path in enumerate(self.previous["path"].tolist())}
            self._blobs = self.previous["git_blob"].tolist()
        return self._at

    def position(self, digest: bytes, path: str) -> int:
        """Where the previous manifest holds the finished row of the replayed row ``digest``'s entry
        recorded with ``path``; -1 when that row must be built again."""
        if digest not in self.landed:
            return -1
        found = self.positions([path])
        return -1 if found is None else found[0]

    def positions(self, paths: list[str]) -> list[int] | None:
        """Where the previous manifest holds the finished rows of entries recorded with ``paths`` (of
        rows whose digests are landed), in one pass of list and set operations; None when any of them
        must be built again: its path is not in that manifest, or its file is not in the checkout as
        the same git blob, unmodified."""
        index = self._index()
        found = [index.get(path, -1) for path in paths]
        if -1 in found or not self.files.issuperset(paths) or not self.modified.isdisjoint(paths):
            return None
        blobs = [self.blobs.get(path, "") for path in paths]
        if "" in blobs or blobs != [self._blobs[at] for at in found]:
            return None
        return found

    def rows(self, positions: list[int], commit: str) -> pd.DataFrame:
        """The carried rows, in ``positions`` order, at this build's commit (one zero-copy slice
        when they run on, as they do when an upstream only appended rows)."""
        rows = rows_at(self.previous, positions)[list(ROW_COLUMNS)].reset_index(drop=True)
        rows["source_commit"] = commit
        return rows


@dataclass
class Listed:
    """What a parser gave, in its order: entries to build, and replayed entries whose finished rows
    the previous manifest holds (:mod:`covid19_images.manifest.row_carry`)."""

    pairs: list[tuple[Entry, str]] = field(default_factory=list)  # entry, safe relative path
    order: list[int] = field(default_factory=list)  # each pair's place in the parser's order
    tags: list[tuple[bytes, int] | None] = field(default_factory=list)  # (row digest, entry index) of each pair
    carried: list[tuple[int, int, bytes, int]] = field(default_factory=list)  # (place, previous row, digest, index)
    entries_of: dict[bytes, int] = field(default_factory=dict)  # row digest -> entries the row gave
    carrier: RowCarry | None = None

    def places(self) -> int:
        """Entries placed so far (built and carried): the place of the next one."""
        return len(self.order) + len(self.carried)


def with_carried(built: pd.DataFrame, order: list[int], listed: Listed, carry: RowCarry, commit: str) -> pd.DataFrame:
    """The built rows and the carried ones together, in the parser's order (as a rebuild lists them)."""
    carried = carry.rows([at for _place, at, _digest, _index in listed.carried], commit)
    rows = pd.concat([carried, built.astype(text_dtype())], ignore_index=True)  # both as Arrow text
    places = np.array([place for place, *_ in listed.carried] + order)
    if (np.diff(places) < 0).any():  # a row built before a carried one (never when rows are only appended)
        rows = rows.iloc[np.argsort(places, kind="stable")].reset_index(drop=True)
    return rows


def landed_rows(listed: Listed, kept: list[int], recorded: dict[bytes, object]) -> set[bytes]:
    """Digests of the recorded rows all of whose entries gave a manifest row in this build (an entry
    refused, left out or listed twice makes its row one to build again next time)."""
    landed: dict[bytes, set[int]] = {}
    for i in kept:
        tag = listed.tags[i]
        if tag is not None:
            landed.setdefault(tag[0], set()).add(tag[1])
    for _place, _at, digest, index in listed.carried:
        landed.setdefault(digest, set()).add(index)
    return {
        digest
        for digest, found in landed.items()
        if listed.entries_of.get(digest, -1) == len(found) and digest in recorded
    }


def carry_block(listed: Listed, block: MemoBlock, seen: set[str]) -> bool:
    """Carry every entry of a known block of replayed rows (:mod:`covid19_images.sources.row_blocks`)
    from the previous manifest in one step, as :meth:`RowCarry.position` would one by one; False (and
    nothing carried) when any entry must be built, so the caller takes the block row by row."""
    carrier = listed.carrier
    if carrier is None or not carrier.landed.issuperset(block.digests):
        return False
    counts = [len(record[0]) for record in block.records]
    paths = [values[PATH_AT] for record in block.records for values in record[0]]
    if len(set(paths)) != len(paths) or not seen.isdisjoint(paths):
        return False
    found = carrier.positions(paths)
    if found is None:
        return False
    for digest, count in zip(block.digests, counts, strict=True):
        listed.entries_of[digest] = count
    tags = [(digest, index) for digest, count in zip(block.digests, counts, strict=True) for index in range(count)]
    place = listed.places()
    listed.carried.extend(
        (place + k, at, digest, index) for k, (at, (digest, index)) in enumerate(zip(found, tags, strict=True))
    )
    seen.update(paths)
    return True
