"""``covid19-images browse --export DIR``: the browser's pages as a static catalog.

The same templates and page data as the live browser, written as flat files with relative
links (:class:`~covid19_images.browse.links.StaticLinks`), so the folder opens from ``file://``
or any static host (GitHub Pages) with no server: the sources page, one page per source with an
example grid (as TFDS's catalog has), the whole grid and each source's grid paged, one page per
image with its duplicates, overlays and problems, the duplicate review (read-only), the bias
charts and the problems table. Filter combinations a static site cannot answer are shown as
counts without links. Pictures are the cached thumbnails and display images, copied in.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covid19_images.browse import pages
from covid19_images.browse.collection import PAGE_SIZE, Collection
from covid19_images.browse.links import StaticLinks
from covid19_images.browse.render import STATIC, render
from covid19_images.browse.review import candidate_pairs
from covid19_images.browse.thumbnails import DISPLAY_SIZE, THUMB_SIZE, Renderer, write_replacing
from covid19_images.manifest.duplicates import CONFIRM_MSE, NEAR_ACCEPT, NEAR_CANDIDATE


@dataclass
class SiteResult:
    out: Path
    pages: int
    pictures: int

    def summary(self) -> str:
        return f"wrote {self.pages} pages and {self.pictures} pictures to {self.out} (open {self.out / 'index.html'})"


class _Writer:
    def __init__(self, out: Path, collection: Collection, renderer: Renderer, links: StaticLinks) -> None:
        self.out, self.collection, self.renderer, self.links = out, collection, renderer, links
        self.pages = 0
        self.pictures = 0

    def page(self, name: str, template: str, **context) -> None:
        html = render(template, self.links, len(self.collection.manifest), **context)
        write_replacing(self.out / name, html.encode("utf-8"))
        self.pages += 1

    def picture(self, name: str, data: bytes) -> None:
        write_replacing(self.out / name, data)
        self.pictures += 1


def export_site(root: Path, out: Path, *, cache_dir: Path | None = None, overwrite: bool = False) -> SiteResult:
    """Write the static catalog of ``root`` into ``out`` (which must be empty unless ``overwrite``)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty (pass --overwrite to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    collection = Collection(root)
    renderer = Renderer(collection.root, cache_dir)
    m = collection.manifest
    names = sorted(set(m["source"]) | set(collection.registry))
    links = StaticLinks(names)
    w = _Writer(out, collection, renderer, links)
    shutil.copytree(STATIC, out / "static")

    cards = pages.source_cards(collection)
    w.page(links.home(), "sources.html", cards=cards)
    for c in cards:
        examples = [pages.card(collection, p) for p in pages.source_examples(collection, c["name"])]
        w.page(links.source(c["name"]), "source.html", c=c, examples=examples)
    for filters in [{}] + [{"source": name} for name in sorted(set(m["source"]))]:
        count = int(np.count_nonzero(collection.select(filters)))
        for number in range(1, max(1, -(-count // PAGE_SIZE)) + 1):
            w.page(links.grid(filters, number), "grid.html", **pages.grid(collection, filters, number))

    renderer.build((m.iloc[i] for i in range(len(m))), THUMB_SIZE)
    for position in range(len(m)):
        row = m.iloc[position]
        image_id = str(row["image_id"])
        context = pages.image(collection, image_id)
        w.page(links.image(image_id), "image.html", **context)
        w.picture(links.thumb(image_id), renderer.picture(row, THUMB_SIZE)[0])
        w.picture(links.display(image_id), renderer.picture(row, DISPLAY_SIZE)[0])
        for mask in context["annotations"]["masks"]:
            w.picture(links.overlay(image_id, mask["annotation_id"]), renderer.overlay(row, mask))

    pairs = candidate_pairs(collection)
    rows = {i: collection.row(i) for p in pairs for i in (p.a, p.b)}
    for p in pairs:
        w.picture(links.difference(p.a, p.b), renderer.difference(rows[p.a], rows[p.b]))
    w.page(
        links.review(),
        "review.html",
        pairs=pairs,
        names={i: pages.inside_source(r) for i, r in rows.items()},
        sources={i: r["source"] for i, r in rows.items()},
        reviewing=False,
        token="",
        message="",
        reviewer="",
        accept=NEAR_ACCEPT,
        candidate=NEAR_CANDIDATE,
        confirm=CONFIRM_MSE,
    )
    w.page(links.bias(), "bias.html", **pages.bias(collection))
    w.page(links.problems(), "problems.html", **pages.problems(collection, {}, 1, page_size=None))
    return SiteResult(out, w.pages, w.pictures)
