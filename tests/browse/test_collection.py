"""The browser's index answers like the manifest does: counts, pages, the served copy, lookups."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covid19_images.browse.collection import BadRequest, Collection, NotFound, page_number
from covid19_images.browse.links import StaticLinks
from covid19_images.browse.render import https_only
from covid19_images.manifest.build import read_manifest

pytestmark = pytest.mark.upstream


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    from tests.conftest import build_synced_root

    sources = ["ieee8023-covid-chestxray", "darshan-xray", "brixia-score", "v7labs-lung-masks", "pocus-ultrasound"]
    return build_synced_root(tmp_path_factory.mktemp("collection"), mirrors, sources)


def test_counts_beside_each_filter_value_are_what_the_manifest_holds(root: Path) -> None:
    collection = Collection(root)
    manifest = read_manifest(root)
    label = manifest["label"].value_counts().index[0]
    page = collection.page({"label": label}, 1)
    chosen = manifest[manifest["label"] == label]
    assert page.total == len(chosen)
    # a facet's counts are under the *other* filters: the label facet still counts every label
    assert dict(page.counts["label"]) == manifest["label"].value_counts().to_dict()
    assert {k: v for k, v in page.counts["source"] if v} == chosen["source"].value_counts().to_dict()
    assert set(manifest.loc[page.rows, "label"]) == {label}


def test_the_served_copy_is_the_one_the_loaders_serve(root: Path) -> None:
    from covid19_images.loaders._options import make_options
    from covid19_images.loaders._select import select

    collection = Collection(root)
    manifest = collection.manifest
    xray = (manifest["modality"] == "xray").to_numpy()
    augmented = np.array([e.get("augmented") in (True, "true", "True", 1) for e in collection.extras], dtype=bool)
    served = set(manifest.loc[collection.served & xray & ~augmented, "image_id"])
    selection = select(manifest, make_options("xray", root=root, labels="all", split=None))
    assert served == set(selection.items["image_id"])
    grouped = manifest[manifest["dup_group"] != ""]
    per_group = pd.Series(collection.served[grouped.index], index=grouped.index).groupby(grouped["dup_group"]).sum()
    assert (per_group <= 1).all() and per_group.sum() >= 1


def test_pages_ids_and_filters_from_a_request_are_looked_up(root: Path) -> None:
    collection = Collection(root)
    pages = collection.page({}, 1).pages
    assert collection.page({}, pages).rows.size > 0
    with pytest.raises(NotFound):
        collection.page({}, pages + 1)
    with pytest.raises(NotFound):
        collection.page({}, 0)
    for text in ("-1", "1e3", "٣", "9" * 10, "0x10", " 1"):
        with pytest.raises(BadRequest):
            page_number(text)
    assert page_number("12") == 12 and page_number(None) == 1
    for query in ({"colour": "red"}, {"label": "maybe"}, {"source": "../../etc"}):
        with pytest.raises(BadRequest):
            collection.parse_filters(query)
    for image_id in ("../manifests/manifest.csv", "", "0" * 16, collection.manifest["image_id"].iloc[0] + "/"):
        with pytest.raises(NotFound):
            collection.row(image_id)
    first = collection.manifest["image_id"].iloc[0]
    assert collection.row(first)["image_id"] == first


def test_static_links_are_flat_safe_file_names_and_external_links_only_https() -> None:
    links = StaticLinks(["a-b", "../x"])
    assert links.source("../x") == "source-.._x.html" and "/" not in links.image("<id>/..")
    assert links.grid({"label": "normal"}) is None and links.grid({"source": "a-b"}, 3) == "grid-a-b-3.html"
    assert https_only("javascript:alert(1)") == "" and https_only("https://github.com/x") == "https://github.com/x"
    assert https_only(None) == "" and https_only("http://example.org") == ""


def test_the_duplicate_facet_counts_unique_served_and_other_copies(root: Path) -> None:
    collection = Collection(root)
    counts = dict(collection.page({}, 1).counts["duplicate"])
    groups = collection.manifest["dup_group"]
    assert counts["unique"] == int((groups == "").sum())
    assert counts["served copy"] + counts["other copy"] == int((groups != "").sum())
    assert 0 < counts["served copy"] <= groups[groups != ""].nunique()
    assert np.count_nonzero(collection.served) == counts["unique"] + counts["served copy"]


def test_the_browser_imports_no_framework() -> None:
    from tests.fresh_imports import packages_imported

    code = "import covid19_images.browse.server, covid19_images.browse.static_site, covid19_images.cli"
    assert packages_imported(code, ("torch", "tensorflow", "fastai", "torchvision")) == []


def test_pictures_are_read_only_from_inside_the_datasets_folder(tmp_path: Path) -> None:
    from PIL import Image

    from covid19_images.browse.thumbnails import Renderer, placeholder

    outside = tmp_path / "secret.png"
    Image.new("L", (64, 64), 200).save(outside)
    inside = tmp_path / "root" / "datasets" / "s"
    inside.mkdir(parents=True)
    Image.new("L", (64, 48), 90).save(inside / "fine.png")
    (inside / "link.png").symlink_to(outside)
    renderer = Renderer(tmp_path / "root", tmp_path / "cache")
    row = {"sha256": "", "format": "png"}
    data, media = renderer.picture({**row, "path": "datasets/s/fine.png"}, 32)
    assert media == "image/jpeg" and Image.open(io.BytesIO(data)).size == (32, 24)
    for path in ("datasets/s/link.png", "datasets/../secret.png", "../secret.png", str(outside)):
        assert renderer.picture({**row, "path": path}, 32) == (placeholder(32), "image/png"), path
