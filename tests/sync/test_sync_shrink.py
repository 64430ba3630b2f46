"""A sync that would drop most of a source is refused for that source (issue 14), through real git mirrors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from covid19_images.manifest.build import read_manifest
from covid19_images.sync.run import sync
from tests.badinputs import SHARED, SMALL_REAL, Upstream, make_root, run_git, small_tree

pytestmark = [pytest.mark.upstream, pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/upstream")]

NAMES = list(SMALL_REAL[:5])


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Upstream, Path]:
    mirror = tmp_path / "mirror"
    upstream = Upstream(mirror, "example", "alpha")
    tree = small_tree(tmp_path / "tree", NAMES)
    upstream.publish(tree)
    root = make_root(tmp_path / "root", [{"name": "alpha", "url": upstream.url}])
    report = sync(root, mirror=mirror, progress=False, commit=True)
    assert not report.failed and len(read_manifest(root)) == len(NAMES)
    return root, mirror, upstream, tree


def _head(root: Path) -> str:
    return run_git("rev-parse", "HEAD", cwd=root / "datasets" / "alpha")


@pytest.mark.parametrize("damage", ["deleted", "binary"])
def test_metadata_gone_or_binary_refuses_the_source_and_keeps_its_rows(setup, damage: str) -> None:
    root, mirror, upstream, tree = setup
    before = read_manifest(root)
    pinned = _head(root)
    if damage == "deleted":
        (tree / "metadata.csv").unlink()
    else:
        (tree / "metadata.csv").write_bytes(os.urandom(4096))
    upstream.publish(tree, "oops")
    report = sync(root, mirror=mirror, progress=False)
    (update,) = [u for u in report.updates if u.name == "alpha"]
    assert update.status == "refused", report.summary()
    assert "would drop" in update.message and "--allow-shrink" in update.message
    assert ("metadata" in update.message) or ("UTF-8" in update.message) or ("parse" in update.message)
    assert report.failed  # the CLI exits 1: a cron job notices
    assert read_manifest(root).equals(before)
    assert _head(root) == pinned  # the checkout is back where its rows came from
    # the change summary reports what was kept, not what the refused build would have done
    (line,) = [text for text in report.summary().splitlines() if text.startswith("alpha:")]
    assert line == f"alpha: {pinned[:12]}→{pinned[:12]}, +0 images, −0 images, 0 relabelled [refused: {update.message}]"
    # the user accepts the loss explicitly
    accepted = sync(root, mirror=mirror, progress=False, allow_shrink=True)
    assert not accepted.failed
    assert len(read_manifest(root)) < len(before)


def test_a_later_good_upstream_commit_syncs_normally(setup) -> None:
    root, mirror, upstream, tree = setup
    metadata = (tree / "metadata.csv").read_bytes()
    (tree / "metadata.csv").unlink()
    upstream.publish(tree, "oops")
    assert sync(root, mirror=mirror, progress=False).failed
    (tree / "metadata.csv").write_bytes(metadata)
    shutil.copy(tree / "images" / NAMES[0], tree / "images" / "extra.jpg")
    upstream.publish(tree, "fixed")
    report = sync(root, mirror=mirror, progress=False)
    assert not report.failed, report.summary()
    manifest = read_manifest(root)
    assert len(manifest) == len(NAMES) + 1  # extra.jpg has no metadata row: indexed as unknown
    assert manifest.loc[manifest["path"].str.endswith("/extra.jpg"), "label"].tolist() == ["unknown"]


def test_a_source_without_labels_is_guarded_too() -> None:
    """Counting only labelled rows let a source whose rows are all "unknown" vanish unguarded."""
    from types import SimpleNamespace

    import pandas as pd

    from covid19_images.core.schema import Problem
    from covid19_images.sync.shrink import find_shrinks

    previous = pd.DataFrame(
        {"source": ["unlabelled"] * 8 + ["labelled"] * 8, "label": ["unknown"] * 8 + ["normal"] * 8}
    )
    build = SimpleNamespace(
        manifest=previous.iloc[[0, 1, 2, 3, 8, 9, 10, 11]].reset_index(drop=True),  # both keep exactly half
        commits={"unlabelled": "c", "labelled": "c"},
        problems=[Problem("unlabelled", "every file over budget", level="error")],
    )
    assert find_shrinks(previous, build, set()) == []  # exactly half is the limit: not refused
    build.manifest = previous.iloc[[0, 1, 2, 8, 9, 10, 11, 12]].reset_index(drop=True)
    shrinks = find_shrinks(previous, build, set())
    assert [(s.source, s.before, s.after, s.what) for s in shrinks] == [("unlabelled", 8, 3, "images")]
    assert shrinks[0].message() == (
        "would drop 5 of its 8 images (every file over budget); refused, kept its previous rows and checkout "
        "(use --allow-shrink to accept)"
    )
    assert find_shrinks(previous, build, {"unlabelled"}) == []
