"""Where each page and picture lives: on the server (query URLs) or in a static export (flat files).

Templates never build a URL themselves; they ask one of these, so the same templates render the
live browser and the published catalog. A static site cannot answer an arbitrary filter, so
:meth:`StaticLinks.grid` returns ``None`` for one it did not write, and templates render the
count without a link.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode


class ServerLinks:
    static = False

    def home(self) -> str:
        return "/"

    def source(self, name: str) -> str:
        return f"/source/{quote(name, safe='')}"

    def grid(self, filters: Mapping[str, str], page: int = 1) -> str | None:
        query = {k: v for k, v in sorted(filters.items()) if v}
        if page != 1:
            query["page"] = str(page)
        return "/grid" + (f"?{urlencode(query)}" if query else "")

    def image(self, image_id: str) -> str:
        return f"/image/{quote(image_id, safe='')}"

    def thumb(self, image_id: str) -> str:
        return f"/thumb/{quote(image_id, safe='')}.jpg"

    def display(self, image_id: str) -> str:
        return f"/display/{quote(image_id, safe='')}.jpg"

    def overlay(self, image_id: str, annotation_id: str) -> str:
        return f"/overlay/{quote(image_id, safe='')}/{quote(annotation_id, safe='')}.png"

    def difference(self, a: str, b: str) -> str:
        return f"/difference/{quote(a, safe='')}/{quote(b, safe='')}.png"

    def review(self) -> str:
        return "/review"

    def bias(self) -> str:
        return "/bias"

    def problems(self, filters: Mapping[str, str] | None = None, page: int = 1) -> str | None:
        query = {k: v for k, v in sorted((filters or {}).items()) if v}
        if page != 1:
            query["page"] = str(page)
        return "/problems" + (f"?{urlencode(query)}" if query else "")

    def asset(self, name: str) -> str:
        return f"/static/{name}"


def _safe(text: str) -> str:
    """A file-name-safe form of a registry name (letters, digits, ``-``, ``_``, ``.``)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in text)


class StaticLinks:
    """Relative links between the flat files of ``browse --export`` (they open from ``file://``)."""

    static = True

    def __init__(self, sources: list[str]) -> None:
        self.sources = set(sources)

    def home(self) -> str:
        return "index.html"

    def source(self, name: str) -> str:
        return f"source-{_safe(name)}.html"

    def grid(self, filters: Mapping[str, str], page: int = 1) -> str | None:
        used = {k: v for k, v in filters.items() if v}
        if not used:
            return f"grid-all-{page}.html"
        if set(used) == {"source"} and used["source"] in self.sources:
            return f"grid-{_safe(used['source'])}-{page}.html"
        return None

    def image(self, image_id: str) -> str:
        return f"image-{_safe(image_id)}.html"

    def thumb(self, image_id: str) -> str:
        return f"thumbs/{_safe(image_id)}.jpg"

    def display(self, image_id: str) -> str:
        return f"display/{_safe(image_id)}.jpg"

    def overlay(self, image_id: str, annotation_id: str) -> str:
        return f"overlays/{_safe(image_id)}-{_safe(annotation_id)}.png"

    def difference(self, a: str, b: str) -> str:
        return f"differences/{_safe(a)}-{_safe(b)}.png"

    def review(self) -> str:
        return "review.html"

    def bias(self) -> str:
        return "bias.html"

    def problems(self, filters: Mapping[str, str] | None = None, page: int = 1) -> str | None:
        return "problems.html" if not filters and page == 1 else None

    def asset(self, name: str) -> str:
        return f"static/{name}"
