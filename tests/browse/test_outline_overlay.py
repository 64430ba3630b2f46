"""Outline masks (RICORD-1a's MD.ai freeform segmentations) in the browser: each overlay is the segmented
region, drawn filled where the reader's outline is, in the live server (read back from the page's own
image in headless Chromium) and in the static export (its overlay PNG files).

The root is RICORD-1a fetched from its miniature through the loopback portal and synced; where each
outline lies is read from the MD.ai export here, not from the browser's code.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from covid19_images.manifest.build import build_manifest, write_manifest
from covid19_images.sources.registry import load_registry
from covid19_images.testing.browser import running_browser
from covid19_images.testing.portal_miniatures import fetched_miniature_root
from covid19_images.testing.portal_server import running

pytestmark = pytest.mark.xdist_group("browser")
SOURCE = "midrc-ricord-1a"
EXPORT = "MIDRC-RICORD-1a_annotations_labelgroup_all_2020-Dec-8.json"
#: the alpha channel of a loaded <img> as the browser decoded it: [height, width, values] (null if not loaded)
READ_ALPHA = (
    "const i = arguments[0]; if (!i.complete || !i.naturalWidth) return null;"
    "const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;"
    "const x = c.getContext('2d'); x.drawImage(i, 0, 0); const d = x.getImageData(0, 0, c.width, c.height);"
    "const a = []; for (let k = 3; k < d.data.length; k += 4) a.push(d.data[k]);"
    "return [c.height, c.width, a];"
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    warnings.simplefilter("ignore")
    root = tmp_path_factory.mktemp("outline-browse") / "root"
    with running() as server:
        fetched_miniature_root(root, server, [SOURCE])
    write_manifest(root, build_manifest(root, load_registry(root), progress=False))
    yield root


def outlines(root: Path) -> list[dict]:
    """Every outline mask row with its image and its vertices, in the export's pixels."""
    notes = pd.read_csv(root / "manifests/annotations.csv", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(root / "manifests/manifest.csv", dtype=str, keep_default_na=False)
    paths = dict(zip(manifest["image_id"], manifest["path"], strict=True))
    export = json.loads((root / "datasets" / SOURCE / EXPORT).read_text())
    vertices = {a["id"]: a["data"]["vertices"] for a in export["datasets"][0]["annotations"] if a.get("data")}
    rows = notes[(notes["kind"] == "mask") & notes["value"].str.startswith("outline:")]
    found = []
    for row in rows.itertuples():
        header = pydicom.dcmread(root / paths[row.image_id], stop_before_pixels=True)
        found.append(
            {
                "image_id": row.image_id,
                "annotation_id": row.annotation_id,
                "vertices": vertices[row.value.removeprefix("outline:")],
                "size": (int(header.Columns), int(header.Rows)),
            }
        )
    assert len(found) == 3  # the three outlines whose slice is in the miniature
    return found


def assert_drawn_where_the_outline_is(alpha: np.ndarray, outline: dict) -> None:
    """Opaque at the outline's centre, transparent outside its bounds (scaled to the overlay's size)."""
    width, height = outline["size"]
    sx, sy = alpha.shape[1] / width, alpha.shape[0] / height
    xs, ys = [v[0] for v in outline["vertices"]], [v[1] for v in outline["vertices"]]
    assert alpha[int(sum(ys) / len(ys) * sy), int(sum(xs) / len(xs) * sx)] > 0
    rows, cols = np.nonzero(alpha)
    assert rows.min() >= int(min(ys) * sy) - 1 and rows.max() <= int(np.ceil(max(ys) * sy)) + 1
    assert cols.min() >= int(min(xs) * sx) - 1 and cols.max() <= int(np.ceil(max(xs) * sx)) + 1


def test_the_live_page_draws_each_outline_as_its_filled_region(driver, root: Path) -> None:
    with running_browser(root) as base:
        for outline in outlines(root):
            driver.get(f"{base}/image/{outline['image_id']}")
            images = driver.find_elements("css selector", ".stage img.overlay")
            (overlay,) = [i for i in images if outline["annotation_id"] in (i.get_attribute("src") or "")]
            assert overlay.is_displayed()
            alpha = driver.execute_script(READ_ALPHA, overlay)
            assert alpha is not None, "the overlay image did not load"
            height, width, values = alpha
            assert_drawn_where_the_outline_is(np.asarray(values, dtype=np.uint8).reshape(height, width), outline)


def test_the_static_export_draws_each_outline_as_its_filled_region(driver, root: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from covid19_images.cli import main

    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["browse", "--root", str(root), "--export", str(out)])
    assert result.exit_code == 0, result.output
    for outline in outlines(root):
        driver.get((out / f"image-{outline['image_id']}.html").as_uri())
        shown = driver.find_elements("css selector", ".stage img.overlay")
        (overlay,) = [i for i in shown if outline["annotation_id"] in (i.get_attribute("src") or "")]
        assert overlay.is_displayed()
        picture = Path(unquote(urlsplit(overlay.get_attribute("src")).path))  # the file the page shows
        assert picture.is_relative_to(out)
        alpha = np.asarray(Image.open(io.BytesIO(picture.read_bytes())).convert("RGBA"))[..., 3]
        assert_drawn_where_the_outline_is(alpha, outline)
