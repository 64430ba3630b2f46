"""What an unchanged source's annotation reader said last time, so a join does not read it again.

A reader's output (its annotations and the problems it reported) is a pure function of the
source's checkout, exactly like the parser's rows, so it is kept under the same key
(:func:`~covid19_images.manifest.source_cache.source_key`: commit of a clean checkout, code,
registry entry, settings) in the root's git directory, with the SHA-256 of each annotation
file it named. The join itself (which image an annotation lands on, its duplicate copies)
depends on the manifest and is redone every build; only the reading is skipped. Darwin JSON
inside a zip, Brixia's score tables: seconds of parsing per sync for a source that did not move.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

from covid19_images.core.annotation import Annotation
from covid19_images.core.schema import Problem

FOLDER = "annotations"
#: Bump when a stored entry's layout changes.
FORMAT = 1


@dataclass
class ReaderOutput:
    """One source's reader output: its annotations, what it reported, and its files' hashes."""

    key: str
    items: list[Annotation]
    problems: list[Problem]
    hashes: dict[str, str] = field(default_factory=dict)  # annotation file (source-relative) -> sha256


def load(cache_dir: Path | None, name: str, key: str) -> ReaderOutput | None:
    """The stored output of ``name``'s reader under ``key``, or None (no key, none stored, another key)."""
    if cache_dir is None or not key:
        return None
    try:
        with open(cache_dir / FOLDER / f"{name}.pickle", "rb") as handle:
            version, stored = pickle.load(handle)  # our own file, written by save() into the root's git dir
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError):
        return None
    if version != FORMAT or not isinstance(stored, ReaderOutput) or stored.key != key:
        return None
    return stored


def save(cache_dir: Path | None, name: str, output: ReaderOutput) -> None:
    """Store ``output`` (written beside, then renamed: a killed sync leaves the old entry or none)."""
    if cache_dir is None or not output.key:
        return
    folder = cache_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.pickle.tmp"
    temporary.write_bytes(pickle.dumps((FORMAT, output), protocol=pickle.HIGHEST_PROTOCOL))
    temporary.replace(folder / f"{name}.pickle")
