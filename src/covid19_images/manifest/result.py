"""What a build gives back (:class:`BuildResult`), importable without pandas.

A sync that finds nothing changed (:mod:`covid19_images.manifest.unchanged`) never reads the
manifest: its result loads the manifest from disk only if a caller asks for the frame, and
otherwise answers with the row count its cache recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - types only: the point of this module is not to import them
    import pandas as pd

    from covid19_images.core.schema import Problem
    from covid19_images.manifest.near_index import NearIndex
    from covid19_images.manifest.source_cache import SourceCache


class BuildResult:
    """The manifest a build produced, its problems, and what the next build may reuse.

    Attributes:
        manifest: the manifest frame (loaded on first use when the build reused the file on disk).
        problems: every problem of the build, as ``manifests/problems.csv`` lists them.
        commits: source -> the commit (or portal lock digest) its rows come from.
        probed: files decoded in this build; unchanged git blobs reuse earlier facts.
        reparsed: source -> metadata rows its parser computed again (the others were replayed
            from the row memo, :mod:`covid19_images.sources.row_memo`); sources without a memo are absent.
        carried: source -> manifest rows taken from the previous manifest, not built again
            (:mod:`covid19_images.manifest.row_carry`); sources without a memo are absent.
        blocks: source -> blocks of metadata rows the memo knew whole, replayed without a digest per
            row (:mod:`covid19_images.sources.row_blocks`); sources without a memo are absent.
        reused: sources taken whole from the cache.
        cache: entries to save once the manifest is written.
        near_index: the near-duplicate index to save with them.
        unchanged: every input is the previous build's: the manifest on disk is already this build's.
        annotations: ``manifests/annotations.csv`` as a frame; None with ``files_current``.
        files_current: the manifest, problems and annotations files on disk are exactly this
            build's (checked by hash): nothing needs writing.
    """

    def __init__(
        self,
        manifest: pd.DataFrame | None = None,
        problems: list[Problem] | None = None,
        commits: dict[str, str] | None = None,
        probed: int = 0,
        reused: list[str] | None = None,
        cache: SourceCache | None = None,
        near_index: NearIndex | None = None,
        unchanged: bool = False,
        annotations: pd.DataFrame | None = None,
        *,
        load: Callable[[], pd.DataFrame] | None = None,
        rows: int | None = None,
        files_current: bool = False,
    ) -> None:
        self._manifest = manifest
        self._load = load
        self._rows = rows
        self.problems = problems if problems is not None else []
        self.commits = commits if commits is not None else {}
        self.probed = probed
        self.reused = reused if reused is not None else []
        self.cache = cache
        self.near_index = near_index
        self.unchanged = unchanged
        self.annotations = annotations
        self.files_current = files_current
        self.reparsed: dict[str, int] = {}
        self.carried: dict[str, int] = {}
        self.blocks: dict[str, int] = {}
        #: the previous manifest's digest and file identity when it was read (``integrity.write_record``)
        self.replaces: tuple[str, tuple[int, ...]] | None = None

    @property
    def manifest(self) -> pd.DataFrame:
        if self._manifest is None and self._load is not None:
            self._manifest = self._load()
        return self._manifest

    @manifest.setter
    def manifest(self, frame: pd.DataFrame) -> None:
        self._manifest, self._load, self._rows = frame, None, None

    @property
    def rows(self) -> int:
        """Images in the manifest, without loading it when the build recorded the count."""
        if self._manifest is None and self._rows is not None:
            return self._rows
        return len(self.manifest)

    def __repr__(self) -> str:
        state: Any = "unchanged" if self.unchanged else f"probed={self.probed}"
        return f"BuildResult(rows={self.rows}, problems={len(self.problems)}, {state}, reused={self.reused})"
