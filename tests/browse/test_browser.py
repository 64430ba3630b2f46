"""The dataset browser in a real browser: headless Chromium driving ``covid19-images browse`` on a demo root.

The root is synced like ``make demo`` (every source of the project's sources.yaml, from the
sample mirrors); expected counts, groups and masks are read from its manifest files here with
pandas, not from the browser's code. Without Debian's chromium these tests skip, saying so;
under CI (``CI=true``) they must run, so a missing browser fails instead.
"""

from __future__ import annotations

import html.parser
import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd
import pytest
import yaml

from covid19_images.manifest import integrity
from covid19_images.manifest.build import MANIFEST_FILE, manifest_bytes, read_manifest
from covid19_images.manifest.io import write_atomic
from covid19_images.manifest.reviews import REVIEWS_FILE
from covid19_images.testing.browser import fetch, running_browser
from tests.conftest import PROJECT, build_synced_root

pytestmark = [pytest.mark.upstream, pytest.mark.xdist_group("browser")]
HOSTILE_FINDING = "<script>window.pwned = 1</script>"
HOSTILE_NAME = "<script>window.pwned=2<script>.png"


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    names = yaml.safe_load((PROJECT / "sources.yaml").read_text())["sources"]
    return build_synced_root(tmp_path_factory.mktemp("browse"), mirrors, [n for n in names if isinstance(n, str)])


@pytest.fixture(scope="module")
def server(demo_root: Path, driver):
    with running_browser(demo_root, review=True) as base:
        yield base


def _count(driver) -> int:
    return int(driver.find_element("css selector", "#match-count b").text)


def _tiles(driver) -> list[str]:
    return [t.get_attribute("data-id") for t in driver.find_elements("css selector", "#grid .tile")]


def _images_loaded(driver, seconds: float = 30) -> bool:
    """Every image on the page decoded to a real picture.

    Thumbnails are ``loading="lazy"`` and made on first request, so they may still be arriving when
    the click returns: bring each into view, wait (bounded) until every image has finished, loaded or
    broken, then require that none is broken.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("Array.from(document.images).forEach(i => i.scrollIntoView())")
    WebDriverWait(driver, seconds).until(
        lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)")
    )
    return driver.execute_script(
        "return Array.from(document.images).every(i => i.naturalWidth > 0) && document.images.length > 0"
    )


def test_every_view_opens_and_filters_change_counts(driver, server: str, demo_root: Path) -> None:
    manifest = read_manifest(demo_root)
    driver.get(server + "/")
    cards = driver.find_elements("css selector", "section.card h2")
    assert {c.text for c in cards} >= set(manifest["source"])
    for nav in ("nav-grid", "nav-review", "nav-bias", "nav-problems", "nav-sources"):
        driver.find_element("id", nav).click()
        assert driver.find_element("css selector", "h1, #match-count").is_displayed()
        assert "Traceback" not in driver.page_source
    driver.find_element("id", "nav-grid").click()
    assert _count(driver) == len(manifest)
    assert len(_tiles(driver)) == min(48, len(manifest))
    # pick a label, then a source: each click narrows the grid to what the manifest says
    label = manifest["label"].value_counts().index[0]
    driver.find_element("css selector", f'[data-facet="label"] a[data-value="{label}"]').click()
    chosen = manifest[manifest["label"] == label]
    assert _count(driver) == len(chosen)
    source = chosen["source"].value_counts().index[-1]
    listed = driver.find_element("css selector", f'[data-facet="source"] a[data-value="{source}"]')
    shown_count = int(listed.find_element("xpath", "..").find_element("css selector", ".n").text)
    both = chosen[chosen["source"] == source]
    assert shown_count == len(both)
    listed.click()
    assert _count(driver) == len(both)
    assert set(_tiles(driver)) <= set(both["image_id"]) and len(_tiles(driver)) == min(48, len(both))
    assert _images_loaded(driver)
    # the bias chart's segments open the grid filtered to them
    driver.get(server + "/bias")
    segment = driver.find_element("css selector", '[data-chart="source"] a.seg')
    expected = int(segment.get_attribute("data-count"))
    segment.click()
    assert _count(driver) == expected
    # problems: filter by level, rows link to their file
    driver.get(server + "/problems?level=error")
    errors = pd.read_csv(demo_root / "manifests/problems.csv", dtype=str, keep_default_na=False)
    assert int(driver.find_element("id", "problem-count").text) == int((errors["level"] == "error").sum())


def test_image_page_shows_its_duplicates_and_mask_overlay(driver, server: str, demo_root: Path) -> None:
    manifest = read_manifest(demo_root)
    annotations = pd.read_csv(demo_root / "manifests/annotations.csv", dtype=str, keep_default_na=False)
    masked = set(annotations.loc[annotations["kind"] == "mask", "image_id"])
    candidates = manifest[manifest["image_id"].isin(masked) & (manifest["dup_group"] != "")]
    assert len(candidates), "the demo root has a masked image with a duplicate"
    row = candidates.iloc[0]
    group = manifest[manifest["dup_group"] == row["dup_group"]]
    driver.get(f"{server}/image/{row['image_id']}")
    members = driver.find_elements("css selector", ".dup-member")
    assert sorted(m.get_attribute("data-id") for m in members) == sorted(group["image_id"])
    served = [m.get_attribute("data-id") for m in members if "served" in m.get_attribute("class").split()]
    assert len(served) == 1 and served[0] in set(group["image_id"])
    overlay = driver.find_element("css selector", ".stage .ov-1")
    assert overlay.is_displayed() and _images_loaded(driver)
    # the overlay is drawn: some pixels are coloured (alpha > 0), and the toggle hides it
    coloured = driver.execute_script(
        "const i = arguments[0], c = document.createElement('canvas'); c.width = i.naturalWidth;"
        "c.height = i.naturalHeight; const x = c.getContext('2d'); x.drawImage(i, 0, 0);"
        "const d = x.getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let k = 3; k < d.length; k += 4) if (d[k] > 0) n++; return n / (c.width * c.height);",
        overlay,
    )
    assert 0.02 < coloured < 0.9
    driver.find_element("css selector", "label[for=toggle-mask-1]").click()
    assert not overlay.is_displayed()


def test_a_review_decision_survives_the_next_sync(driver, server: str, demo_root: Path) -> None:
    from covid19_images.sync.run import sync

    driver.get(server + "/review")
    pair = driver.find_elements("css selector", "section.pair")[0]
    a, b = pair.get_attribute("id").removeprefix("pair-").split("-")
    pair.find_element("name", "reviewer").send_keys("Dr Test")
    pair.find_element("name", "reason").send_keys("different day, <b>different</b> film")
    pair.find_element("css selector", "button[value=different]").click()
    # the click posts the form and the server redirects back: wait (bounded) for the new page's decision
    from selenium.webdriver.support.ui import WebDriverWait

    decided = WebDriverWait(driver, 30).until(lambda d: d.find_elements("css selector", f"#pair-{a}-{b} .decision"))
    assert decided[0].text.lower() == "different"
    reviews = pd.read_csv(demo_root / REVIEWS_FILE, dtype=str, keep_default_na=False)
    assert reviews[["reviewer", "decision", "reason"]].iloc[-1].tolist() == [
        "Dr Test",
        "different",
        "different day, <b>different</b> film",
    ]
    report = sync(demo_root, offline=True, progress=False)
    assert not report.failed
    after = read_manifest(demo_root).set_index("image_id")
    problems = pd.read_csv(demo_root / "manifests/problems.csv", dtype=str, keep_default_na=False)
    still_joined = problems["message"].str.contains("reviewed as different").any()
    assert after.loc[a, "dup_group"] != after.loc[b, "dup_group"] or after.loc[a, "dup_group"] == "" or still_joined
    driver.get(f"{server}/image/{a}")  # the server notices the new manifest
    ids = {m.get_attribute("data-id") for m in driver.find_elements("css selector", ".dup-member")}
    assert (b not in ids) or still_joined


def test_hostile_names_and_findings_render_as_text(driver, demo_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "hostile"
    shutil.copytree(demo_root, root, symlinks=True)
    manifest = read_manifest(root)
    position = manifest.index[manifest["format"].isin(["png", "jpeg"])][0]
    old = root / manifest.at[position, "path"]
    new = old.with_name(HOSTILE_NAME)
    shutil.copyfile(old, new)
    manifest.at[position, "path"] = str(new.relative_to(root))
    manifest.at[position, "finding"] = HOSTILE_FINDING
    data = manifest_bytes(manifest)
    integrity.write_record(root / MANIFEST_FILE, data)
    write_atomic(root / MANIFEST_FILE, data)
    image_id = manifest.at[position, "image_id"]
    with running_browser(root) as base:
        driver.get(f"{base}/image/{image_id}")
        assert driver.find_element("id", "image-title").text == HOSTILE_NAME
        assert HOSTILE_FINDING in driver.find_element("css selector", "table.fields").text
        assert driver.find_elements("tag name", "script") == []
        assert driver.execute_script("return window.pwned === undefined")
        assert _images_loaded(driver)  # the file with the hostile name is still served, by id
        driver.get(f"{base}/grid?source={manifest.at[position, 'source']}")
        assert driver.find_elements("tag name", "script") == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/image/..%2F..%2Fetc%2Fpasswd", 404),
        ("/image/../../sources.yaml", 404),
        ("/thumb/%3Cscript%3E.jpg", 404),
        ("/display/0000000000000000.jpg", 404),
        ("/overlay/x/y.png", 404),
        ("/static/..%2F..%2Fcli.py", 404),
        ("/grid?page=99999", 404),
        ("/grid?page=" + "9" * 5000, 400),
        ("/grid?page=-1", 400),
        ("/grid?label=maybe", 400),
        ("/grid?source=..%2F..", 400),
        ("/grid?colour=red", 400),
        ("/grid?label=normal&label=covid-19", 400),
        ("/problems?level=fatal", 400),
        ("/source/%3Cscript%3E", 404),
    ],
)
def test_bad_requests_get_a_4xx_page_never_a_traceback(server: str, path: str, status: int) -> None:
    code, body = fetch(server + path)
    assert code == status
    assert b"Traceback" not in body and b"<script" not in body.lower()


def test_writing_is_refused_without_review_or_the_servers_token(demo_root: Path, server: str) -> None:
    manifest = read_manifest(demo_root)
    a, b = manifest["image_id"].iloc[:2]
    form = f"a={a}&b={b}&decision=different&reviewer=x&token=guess".encode()
    assert fetch(server + "/review", form)[0] == 403
    with running_browser(demo_root) as read_only:
        assert fetch(read_only + "/review", form)[0] == 403
    assert not (demo_root / REVIEWS_FILE).exists() or "guess" not in (demo_root / REVIEWS_FILE).read_text()


class _Refs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and ((tag == "a" and name == "href") or (tag in ("img", "link") and name in ("src", "href"))):
                self.refs.append(value)


def test_static_export_opens_from_file_with_no_broken_link_or_image(driver, demo_root: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from covid19_images.cli import main

    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["browse", "--root", str(demo_root), "--export", str(out)])
    assert result.exit_code == 0, result.output
    pages = sorted(out.glob("*.html"))
    broken = []
    for page in pages:
        parser = _Refs()
        parser.feed(page.read_text(encoding="utf-8"))
        for ref in parser.refs:
            parts = urlsplit(ref)
            if parts.scheme in ("http", "https"):
                assert parts.scheme == "https", ref  # external links only to https upstreams
                continue
            if not (out / unquote(parts.path)).is_file():
                broken.append(f"{page.name}: {ref}")
    assert not broken, broken[:20]
    manifest = read_manifest(demo_root)
    assert {f"image-{i}.html" for i in manifest["image_id"]} <= {p.name for p in pages}
    assert {f"source-{s}.html" for s in manifest["source"]} <= {p.name for p in pages}
    visit = ["index.html", "grid-all-1.html", "review.html", "bias.html", "problems.html"]
    visit += [f"source-{s}.html" for s in sorted(set(manifest["source"]))]
    visit += [f"image-{i}.html" for i in manifest.drop_duplicates("source")["image_id"]]
    for name in visit:
        driver.get((out / name).as_uri())
        assert driver.find_element("tag name", "h1").is_displayed(), name
        # thumbnails are loading="lazy": ask for every one now, then wait (bounded) for them to arrive
        driver.execute_script("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        deadline = time.monotonic() + 15
        while driver.find_elements("tag name", "img") and not _images_loaded(driver) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _images_loaded(driver) or not driver.find_elements("tag name", "img"), name
        sheet = driver.execute_script("return document.styleSheets.length")
        assert sheet == 1, name


def test_the_command_the_demo_prints_serves_the_root(demo_root: Path) -> None:
    import shlex
    import subprocess
    import time

    from covid19_images.testing.browser import free_port
    from covid19_images.testing.demo import browse_command

    command = browse_command(demo_root)
    assert command.split()[-3:] == ["browse", "--root", str(demo_root.resolve())]
    port = free_port()
    process = subprocess.Popen([*shlex.split(command), "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = fetch(f"http://127.0.0.1:{port}/") if process.poll() is None else (0, b"")
            if status == 200:
                break
            time.sleep(0.3)
        assert status == 200
        names = set(read_manifest(demo_root)["source"])
        assert all(name.encode() in body for name in names)
    finally:
        process.terminate()
        process.wait(timeout=10)
