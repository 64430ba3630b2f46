"""What the browser knows about a root, loaded once: the manifest and its filter index.

Every request is answered from arrays built here, never by re-reading a file or filtering a
DataFrame: each facet (source, modality, view, ...) is a column of small integer codes, so a
filter is a few vectorised comparisons and the counts beside each value are one ``bincount``
per facet. That is what keeps a grid page of a 200,000-row manifest in milliseconds
(``benchmarks/bench_browse.py``).

Request values are looked up, never trusted: an image id must be a key of :attr:`Collection.rows`,
a filter value one of the facet's known values, a page a number within range; anything else is
:class:`BadRequest` (a 400 page) or :class:`NotFound` (404).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from covid19_images.core.schema import parse_extra
from covid19_images.manifest.annotations import empty_annotations, read_annotations
from covid19_images.manifest.build import PROBLEMS_FILE, read_manifest
from covid19_images.quality.report.compute import age_group
from covid19_images.sources.registry import SourceSpec, load_registry

#: Grid facets in sidebar order. ``annotation`` is multi-valued (an image can carry several kinds).
FACETS = ("source", "modality", "view", "label", "split", "license", "annotation", "duplicate", "age")
ANNOTATION_KINDS = ("mask", "box", "severity", "finding", "none")
DUPLICATE_STATUS = ("unique", "served copy", "other copy")
PAGE_SIZE = 48
NO_AGE = "age unknown"


class BadRequest(ValueError):
    """A request the browser refuses (unknown filter, value or parameter): a 400 page."""


class NotFound(LookupError):
    """Nothing the manifest lists has that id or page: a 404 page."""


@dataclass
class Facet:
    values: list[str]
    codes: np.ndarray  # int32 per row into ``values``; unused for multi-valued facets
    members: dict[str, np.ndarray] = field(default_factory=dict)  # value -> bool per row (multi-valued)

    def mask(self, value: str) -> np.ndarray:
        if self.members:
            return self.members[value]
        return self.codes == self.values.index(value)

    def counts(self, within: np.ndarray) -> list[tuple[str, int]]:
        if self.members:
            return [(v, int(np.count_nonzero(self.members[v] & within))) for v in self.values]
        found = np.bincount(self.codes[within], minlength=len(self.values))
        return list(zip(self.values, found.tolist(), strict=True))


@dataclass
class Page:
    rows: np.ndarray  # positions into the manifest
    number: int
    pages: int
    total: int
    counts: dict[str, list[tuple[str, int]]]


def _coded(values: pd.Series) -> Facet:
    codes, uniques = pd.factorize(values.astype(str), sort=True)
    return Facet([str(u) for u in uniques], codes.astype(np.int32))


def served_copies(manifest: pd.DataFrame, extras: list[dict]) -> np.ndarray:
    """True for the copy of each duplicate group the loaders serve (and for unique images).

    The loaders leave augmented copies out, then keep, per group, the row with the smallest
    ``image_id`` (``loaders/_select.py``), so the choice is the same whatever split is asked
    for; a group made only of augmented copies has no served copy.
    """
    augmented = np.array([e.get("augmented") in (True, "true", "True", 1) for e in extras], dtype=bool)
    groups = manifest["dup_group"].astype(str).to_numpy()
    frame = pd.DataFrame({"group": groups, "id": manifest["image_id"].astype(str).to_numpy()})
    candidates = frame[(groups != "") & ~augmented].sort_values("id", kind="mergesort")
    served = groups == ""
    served[candidates.drop_duplicates("group").index.to_numpy()] = True
    return served


class Collection:
    """A root's manifest, annotations, problems and registry, indexed for the browser."""

    def __init__(self, root: Path, manifest: pd.DataFrame | None = None) -> None:
        self.root = Path(root).resolve()
        manifest = read_manifest(self.root) if manifest is None else manifest
        if manifest is None:
            raise FileNotFoundError(f"no manifest under {self.root}; run `covid19-images sync` first")
        self.manifest = manifest.reset_index(drop=True)
        try:
            self.registry: dict[str, SourceSpec] = load_registry(self.root)
        except (OSError, ValueError):
            self.registry = {}
        annotations = read_annotations(self.root)
        self.annotations = annotations if annotations is not None else empty_annotations()
        self.problems = self._read_problems()
        self.rows: dict[str, int] = {str(i): n for n, i in enumerate(self.manifest["image_id"])}
        #: column -> plain object array: a grid tile reads its fields without a pandas row lookup
        self.values = {c: self.manifest[c].astype(str).to_numpy(dtype=object) for c in self.manifest.columns}
        self.extras = [parse_extra(text) for text in self.manifest["extra"]]
        self.served = served_copies(self.manifest, self.extras)
        self.facets = self._facets()
        self.by_annotation: dict[str, list[int]] = {}
        for position, image_id in enumerate(self.annotations["image_id"]):
            self.by_annotation.setdefault(str(image_id), []).append(position)
        self._annotation_records: list[dict[str, str]] | None = None
        self.memo: dict[str, object] = {}  # whole-collection pages (sources, bias), made once per load

    def remember(self, key: str, make):
        """``make()`` once per loaded collection (pages that summarise every row)."""
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def _read_problems(self) -> pd.DataFrame:
        path = self.root / PROBLEMS_FILE
        columns = ["level", "source", "path", "row", "message"]
        if not path.is_file():
            return pd.DataFrame(columns=columns, dtype=object)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
        except (ValueError, UnicodeDecodeError):
            return pd.DataFrame(columns=columns, dtype=object)
        return frame.reindex(columns=columns, fill_value="")

    def _facets(self) -> dict[str, Facet]:
        m = self.manifest
        facets = {name: _coded(m[name]) for name in ("source", "modality", "view", "label", "split", "license")}
        n = len(m)
        members = {kind: np.zeros(n, dtype=bool) for kind in ANNOTATION_KINDS}
        if len(self.annotations):
            positions = pd.Series(self.rows)
            for kind, ids in self.annotations.groupby("kind")["image_id"]:
                if kind in members:
                    found = positions.reindex(ids.astype(str).unique()).dropna().astype(int).to_numpy()
                    members[kind][found] = True
        members["none"] = ~np.logical_or.reduce([members[k] for k in ANNOTATION_KINDS if k != "none"])
        facets["annotation"] = Facet(list(ANNOTATION_KINDS), np.zeros(n, dtype=np.int32), members)
        in_group = (m["dup_group"].astype(str) != "").to_numpy()
        status = np.where(~in_group, 0, np.where(self.served, 1, 2)).astype(np.int32)
        facets["duplicate"] = Facet(list(DUPLICATE_STATUS), status)
        ages = [age_group(a, e) or NO_AGE for a, e in zip(m["age"], self.extras, strict=True)]
        facets["age"] = _coded(pd.Series(ages, dtype=object))
        return facets

    # --- lookups -------------------------------------------------------------------------

    def row(self, image_id: str) -> pd.Series:
        position = self.rows.get(image_id)
        if position is None:
            raise NotFound("no image with that id in the manifest")
        return self.manifest.iloc[position]

    def annotations_of(self, image_id: str) -> list[dict[str, str]]:
        """The annotation rows that land on ``image_id``, as plain dicts (column -> text)."""
        if self._annotation_records is None:
            self._annotation_records = self.annotations.astype(str).to_dict("records")
        return [self._annotation_records[p] for p in self.by_annotation.get(image_id, [])]

    def annotation(self, annotation_id: str, image_id: str) -> dict[str, str]:
        """One annotation row that lands on ``image_id`` (both must be listed)."""
        for record in self.annotations_of(image_id):
            if record["annotation_id"] == annotation_id:
                return record
        raise NotFound("no such annotation on that image")

    # --- filtering -----------------------------------------------------------------------

    def parse_filters(self, query: Mapping[str, str], allowed_extra: tuple[str, ...] = ("page",)) -> dict[str, str]:
        """Known facet -> value from request parameters; anything unknown is a :class:`BadRequest`."""
        filters: dict[str, str] = {}
        for key, value in query.items():
            if key in allowed_extra:
                continue
            facet = self.facets.get(key)
            if facet is None:
                raise BadRequest("unknown filter")
            if value == "":
                continue
            if value not in facet.values:
                raise BadRequest(f"no such value for filter {key}")
            filters[key] = value
        return filters

    def select(self, filters: Mapping[str, str], skip: str = "") -> np.ndarray:
        mask = np.ones(len(self.manifest), dtype=bool)
        for name, value in filters.items():
            if name != skip:
                mask &= self.facets[name].mask(value)
        return mask

    def page(self, filters: Mapping[str, str], number: int, size: int = PAGE_SIZE) -> Page:
        """One page of the filtered grid and every facet's counts under the other filters."""
        mask = self.select(filters)
        total = int(np.count_nonzero(mask))
        pages = max(1, -(-total // size))
        if not 1 <= number <= pages:
            raise NotFound(f"page {number} does not exist ({pages} pages)")
        rows = np.flatnonzero(mask)[(number - 1) * size : number * size]
        counts = {}
        for name, facet in self.facets.items():
            within = mask if name not in filters else self.select(filters, skip=name)
            counts[name] = facet.counts(within)
        return Page(rows, number, pages, total, counts)


def page_number(text: str | None) -> int:
    """A page parameter as an int; not a small positive decimal number is a :class:`BadRequest`."""
    if text is None or text == "":
        return 1
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise BadRequest("page must be a positive number")
    return int(text)
