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

from covid19_images.loaders._select import DataNotAvailableError, NoItemsError, Selection
from covid19_images.sources.registry import RegistryError, load_registry


def _portal_sources(selection: Selection) -> set[str]:
    try:
        registry = load_registry(selection.root)
    except RegistryError:
        return set()
    return {name for name, spec in registry.items() if spec.is_portal}


def unfetched(selection: Selection) -> dict[str, int]:
    """Portal source -> how many of its selected images are not on disk (sources with none left out)."""
    portal = _portal_sources(selection) & set(selection.items["source"])
    counts: dict[str, int] = {}
    for source in sorted(portal):
        paths = selection.items.loc[selection.items["source"] == source, "path"].drop_duplicates()
        absent = sum(1 for path in paths if not os.path.isfile(selection.root / path))
        if absent:
            counts[source] = absent
    return counts


def serve_fetched(selection: Selection, *, only_fetched: bool = False) -> Selection:
    """``selection`` when every portal image in it is here; else refuse, or (``only_fetched``) drop them."""
    counts = unfetched(selection)
    if not counts:
        return selection
    lines = [
        f"{source}: {count} selected image(s) not fetched; run `covid19-images fetch {source}` "
        f"(or `covid19-images fetch {source} --only <selection>` for just these)"
        for source, count in counts.items()
    ]
    if not only_fetched:
        raise DataNotAvailableError(
            "the selection holds images of portal sources that are not fetched here:\n"
            + "\n".join(lines)
            + "\nor pass only_fetched=True to serve the images that are here"
        )
    warnings.warn("left out (only_fetched=True):\n" + "\n".join(lines), stacklevel=3)
    items = selection.items
    absent = items["source"].isin(counts) & ~items["path"].map(lambda p: os.path.isfile(selection.root / p))
    kept = items[~absent].reset_index(drop=True)
    if kept.empty:
        raise NoItemsError("nothing left to serve: every selected image is of a portal source not fetched here")
    return replace(selection, items=kept)
