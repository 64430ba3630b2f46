"""The manifest as the loaders read it: typed columns, a clear error when there is none, the selection.

Framework-neutral: every framework room calls :func:`selection_for` and gets the same items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from covid19_images.loaders._options import Options
    from covid19_images.loaders._select import Selection

_NUMERIC_INT = ("width", "height", "frames")


def read_manifest_typed(root: Any = None, *, version: str | None = None) -> pd.DataFrame:
    """The manifest (or release ``version``'s, read from git) with numeric columns typed; a clear error if none."""
    import pandas as pd

    from covid19_images.core.paths import find_root
    from covid19_images.manifest.build import MANIFEST_FILE, read_manifest
    from covid19_images.sources.registry import DATASETS_DIR, REGISTRY_FILE

    base = find_root(root)
    if version is not None:
        from covid19_images.manifest.versions import manifest_at

        frame = manifest_at(base, version)
    else:
        frame = read_manifest(base)
    if frame is None:
        datasets = base / DATASETS_DIR
        present = sorted(
            d.name
            for d in (datasets.iterdir() if datasets.is_dir() else ())
            if d.is_dir() and any(c.name != ".git" for c in d.iterdir())
        )
        where = f"no manifest at {base / MANIFEST_FILE}"
        if not (base / REGISTRY_FILE).is_file():
            raise FileNotFoundError(
                f"{where}, and {base} is not a covid19-images root (no {REGISTRY_FILE}): pass root=... "
                "or set COVID19_IMAGES_ROOT"
            )
        if present:
            raise FileNotFoundError(
                f"{where}, but {len(present)} source(s) are checked out ({', '.join(present)}): build it from them "
                f"with `covid19-images sync --offline --root {base}`"
            )
        raise FileNotFoundError(
            f"{where} and no source is checked out under {datasets}: run `covid19-images sync --root {base}` "
            "(fetches every source and builds the manifest), or `git submodule update --init datasets/<name>` "
            "then `covid19-images sync --offline`"
        )
    for column in _NUMERIC_INT:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce").astype("float64")
    return frame


class ManifestChanged(RuntimeError):
    """The manifest a loader was built from is no longer the one on disk (a sync ran since)."""


class ManifestStamp:
    """What the manifest file was (inode, size, modification time) when a loader read it.

    A sync that swaps two files' contents rewrites the manifest; a loader built before it
    would serve the new pixels under the old labels. Items read from the files (not from a
    pixel cache, which holds the old pixels) call :meth:`check` first: one ``stat`` per item,
    and a hash of the manifest only when the file was replaced (same bytes: carry on).

    The stamp is taken (``stat``) before the manifest is read, and its hash is the one the read
    already computed for the integrity check (:meth:`settle`): the bytes the loader's rows
    really came from, hashed once. A file replaced between the two shows as a changed ``stat``
    at the first :meth:`check`, which then compares contents.
    """

    def __init__(self, root: Any) -> None:
        from covid19_images.core.paths import find_root
        from covid19_images.manifest.build import MANIFEST_FILE

        self.path = find_root(root) / MANIFEST_FILE
        self.seen = self._now()
        self.digest: str | None = None

    def settle(self, manifest: pd.DataFrame | None) -> ManifestStamp:
        """Take the hash of the bytes ``manifest`` was read from (hash the file only if the read did not)."""
        from covid19_images.manifest.io import MANIFEST_SHA256

        known = None if manifest is None else manifest.attrs.get(MANIFEST_SHA256)
        self.digest = known if isinstance(known, str) else self._digest()
        return self

    def _digest(self) -> str | None:
        import hashlib

        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def _now(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return info.st_ino, info.st_size, info.st_mtime_ns

    def check(self) -> None:
        now = self._now()
        if now == self.seen:
            return
        if self._digest() == self.digest:  # rewritten with the same bytes (a sync that changed nothing)
            self.seen = now
            return
        raise ManifestChanged(
            f"{self.path} changed since this loader was built (a sync ran?): its files may no longer be the "
            "pictures its labels describe; build the loader again"
        )


def selection_for(options: Options, *, split: str | object | None = ...) -> Selection:
    """Read the manifest, select the items and prove their files are on disk."""
    from covid19_images.loaders._select import check_available, select

    stamp = ManifestStamp(options.root)  # before reading: a change during the read is noticed too
    manifest = read_manifest_typed(options.root, version=options.version)
    # a release's rows come from git, not from the file on disk the stamp watches: hash that file
    stamp.settle(manifest if options.version is None else None)
    if split is not ...:
        from dataclasses import replace

        options = replace(options, split=split)  # type: ignore[arg-type]
    from covid19_images.loaders.tasks import needs_task_selection, select_for_task

    selection = (select_for_task if needs_task_selection(options) else select)(manifest, options)
    if options.version is not None:  # a release's rows are only its rows on the commits it pins
        from covid19_images.sync.versions import require_version_checkouts

        require_version_checkouts(selection.root, options.version, set(selection.items["source"]))
    from covid19_images.loaders._portal import serve_fetched

    selection = serve_fetched(selection, only_fetched=options.only_fetched)
    if options.check_files:
        check_available(selection)
    from dataclasses import replace as with_stamp

    return with_stamp(selection, stamp=stamp)
