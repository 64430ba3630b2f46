"""Which served CT volumes are copies of another (``load_covid_ct(volumes=True, deduplicate=True)``).

Kept apart from :mod:`covid19_images.loaders.volumes`, which reads and serves them: this is the
one decision over the whole selection, by the manifest's duplicate groups (see that module's
docstring for the rule: largest first, a volume with one slice held nowhere else stays whole).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar


class _Volume(Protocol):
    """What the decision reads of a :class:`~covid19_images.loaders.volumes.VolumeItem`."""

    image_ids: list[str]
    source: str
    key: str


V = TypeVar("V", bound=_Volume)


def drop_duplicate_volumes(volumes: list[V], items: Any) -> tuple[list[V], dict[str, str]]:
    """The volumes that are not copies, and ``{dropped key: kept key}`` (see the module docstring)."""
    groups = dict(zip(items["image_id"], items["dup_group"], strict=False))
    covers = [frozenset(groups.get(i, "") for i in v.image_ids) for v in volumes]
    order = sorted(range(len(volumes)), key=lambda k: (-len(volumes[k].image_ids), volumes[k].source, volumes[k].key))
    kept: list[int] = []
    duplicates: dict[str, str] = {}
    for k in order:
        holder = None
        if covers[k] and "" not in covers[k]:  # every slice is a member of a duplicate group
            holders = [j for j in kept if covers[k] <= covers[j]]
            # near-duplicate groups can span two series of one study: name the same series when it holds them
            same = [j for j in holders if volumes[j].key.split("@")[0] == volumes[k].key.split("@")[0]]
            holder = (same or holders or [None])[0]
        if holder is None:
            kept.append(k)
        else:
            duplicates[f"{volumes[k].source}:{volumes[k].key}"] = f"{volumes[holder].source}:{volumes[holder].key}"
    return [volumes[k] for k in sorted(kept)], duplicates
