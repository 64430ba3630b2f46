"""Portal sources in a selection: never a silent subset of what was asked for.

A clone holds the committed rows of every portal source, fetched or not. Before anything is
served, the images of portal sources whose files are not here are counted per source: by
default the selection is refused with one line per source (how many images, the fetch
command); ``only_fetched=True`` serves what is here instead and warns what was left out.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace

from covid19_images.core.paths import DATASETS_DIR
from covid19_images.loaders._select import DataNotAvailableError, NoItemsError, Selection
from covid19_images.sources.portal.state import presence
from covid19_images.sources.registry import RegistryError, load_registry


def _portal_sources(selection: Selection) -> set[str]:
    try:
        registry = load_registry(selection.root)
    except RegistryError:
        return set()
    return {name for name, spec in registry.items() if spec.is_portal}


def _absent(selection: Selection) -> dict[str, dict[str, bool]]:
    """Portal source -> ``{path: damaged}`` of its selected images not here intact: not on disk, or (damaged)
    deleted or changed size since the fetch (the fetch marker's sizes: one ``stat`` per file)."""
    portal = _portal_sources(selection) & set(selection.items["source"])
    found: dict[str, dict[str, bool]] = {}
    for source in sorted(portal):
        damaged = {f"{DATASETS_DIR}/{source}/{f}" for f in presence(selection.root, source).damaged}
        paths = selection.items.loc[selection.items["source"] == source, "path"].drop_duplicates()
        absent = {p: p in damaged for p in paths if p in damaged or not os.path.isfile(selection.root / p)}
        if absent:
            found[source] = absent
    return found


def unfetched(selection: Selection) -> dict[str, int]:
    """Portal source -> how many of its selected images are not here intact (sources with none left out)."""
    return {source: len(paths) for source, paths in _absent(selection).items()}


def _line(source: str, paths: dict[str, bool]) -> str:
    first, damaged = next(iter(paths.items()))
    why = "fetched, then deleted or changed size" if damaged else "not on disk"
    return (
        f"{source}: {len(paths)} selected image(s) not fetched; run `covid19-images fetch {source}` "
        f"(or `covid19-images fetch {source} --only <selection>` for just these). First: {first} ({why})"
    )


def serve_fetched(selection: Selection, *, only_fetched: bool = False) -> Selection:
    """``selection`` when every portal image in it is here; else refuse, or (``only_fetched``) drop them."""
    absent = _absent(selection)
    if not absent:
        return selection
    lines = [_line(source, paths) for source, paths in absent.items()]
    if not only_fetched:
        raise DataNotAvailableError(
            "the selection holds images of portal sources that are not fetched here:\n"
            + "\n".join(lines)
            + "\nor pass only_fetched=True to serve the images that are here"
        )
    warnings.warn("left out (only_fetched=True):\n" + "\n".join(lines), stacklevel=3)
    items = selection.items
    gone = {path for paths in absent.values() for path in paths}
    kept = items[~(items["source"].isin(absent) & items["path"].isin(gone))].reset_index(drop=True)
    if kept.empty:
        raise NoItemsError("nothing left to serve: every selected image is of a portal source not fetched here")
    return replace(selection, items=kept)
