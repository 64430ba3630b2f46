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


def selection_for(options: Options, *, split: str | object | None = ...) -> Selection:
    """Read the manifest, select the items and prove their files are on disk."""
    from covid19_images.loaders._select import check_available, select

    manifest = read_manifest_typed(options.root, version=options.version)
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
    return selection
