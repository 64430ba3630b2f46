"""cache=True: identical pixels, invalidation by content and settings, torn files never used."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from covid19_images import load_covid_xray
from covid19_images.loaders.cache import cache_key
from covid19_images.manifest.build import read_manifest

from .conftest import build_synced_root

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("loaders-cache")]
SOURCES = ("zhanglab-pediatric-xray", "figure1-xray")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("cache"), mirrors, SOURCES)


def _arrays(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.glob("*.npy") if not p.name.startswith("."))


def test_cache_hit_gives_identical_tensors_to_decoding(root: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    decoded = load_covid_xray("torch", root=root, split=None, image_size=96)
    filled = load_covid_xray("torch", root=root, split=None, image_size=96, cache=True, cache_dir=cache_dir)
    (array,) = _arrays(cache_dir)
    stamp = array.stat().st_mtime_ns
    hit = load_covid_xray("torch", root=root, split=None, image_size=96, cache=True, cache_dir=cache_dir)
    assert _arrays(cache_dir) == [array] and array.stat().st_mtime_ns == stamp, "second load must reuse the file"
    assert len(decoded) == len(filled) == len(hit) > 20
    for index in range(len(decoded)):
        expected, label = decoded[index]
        for dataset in (filled, hit):
            image, cached_label = dataset[index]
            assert torch.equal(image, expected) and cached_label == label
    loader = torch.utils.data.DataLoader(hit, batch_size=8, num_workers=2)
    batched = torch.cat([images for images, _ in loader])
    assert torch.equal(batched[5], decoded[5][0])


def test_default_cache_location_is_under_the_root(root: Path) -> None:
    load_covid_xray("torch", root=root, split="val", image_size=32, cache=True)
    assert _arrays(root / ".cache" / "covid19-images")


def test_settings_change_the_key(root: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    small = load_covid_xray("torch", root=root, split="train", image_size=64, cache=True, cache_dir=cache_dir)
    large = load_covid_xray("torch", root=root, split="train", image_size=80, cache=True, cache_dir=cache_dir)
    gray = load_covid_xray(
        "torch", root=root, split="train", image_size=64, channels=1, cache=True, cache_dir=cache_dir
    )
    assert len(_arrays(cache_dir)) == 3
    assert small[0][0].shape == (3, 64, 64) and large[0][0].shape == (3, 80, 80) and gray[0][0].shape == (1, 64, 64)


def test_changed_image_content_gives_a_new_cache(root: Path, tmp_path: Path) -> None:
    from covid19_images.sync.run import sync

    copy = tmp_path / "root"
    shutil.copytree(root, copy, symlinks=True)
    cache_dir = tmp_path / "cache"
    kwargs = {"root": copy, "split": None, "image_size": 64, "cache": True, "cache_dir": cache_dir}
    before = load_covid_xray("torch", **kwargs)
    key_before = _arrays(cache_dir)
    # upstream replaces one picture by another real one; `sync --offline` records the new sha256
    rows = before.manifest.reset_index(drop=True)
    target, donor = rows["path"].iloc[0], rows["path"].iloc[1]
    old_sha = rows["sha256"].iloc[0]
    shutil.copyfile(copy / donor, copy / target)
    sync(copy, offline=True, progress=False)
    new_sha = read_manifest(copy).set_index("path").loc[target, "sha256"]
    assert new_sha != old_sha
    after = load_covid_xray("torch", **kwargs)
    assert len(_arrays(cache_dir)) == 2 and key_before[0] in _arrays(cache_dir)
    index = after.manifest.reset_index(drop=True).index[after.manifest["path"].to_numpy() == target][0]
    fresh = load_covid_xray("torch", **{**kwargs, "cache": False})
    assert torch.equal(after[index][0], fresh[index][0])


def test_truncated_cache_file_is_rebuilt_not_read(root: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    kwargs = {"root": root, "split": "train", "image_size": 48, "cache": True, "cache_dir": cache_dir}
    first = load_covid_xray("torch", **kwargs)
    expected = [first[i][0] for i in range(len(first))]
    (array,) = _arrays(cache_dir)
    size = array.stat().st_size
    with open(array, "r+b") as handle:  # a torn copy / full disk: the tail is missing
        handle.truncate(size - 1000)
    again = load_covid_xray("torch", **kwargs)
    assert array.stat().st_size == size
    assert all(torch.equal(again[i][0], expected[i]) for i in range(len(again)))


def test_interrupted_fill_is_never_used(root: Path, tmp_path: Path) -> None:
    """Kill a process in the middle of filling: no finished file appears, the next load fills it."""
    cache_dir = tmp_path / "cache"
    script = textwrap.dedent(
        f"""
        import time
        import covid19_images.loaders.cache as cache

        real = cache.load_item
        def slow(*args, **kwargs):  # make the fill slow enough to be killed half-way
            time.sleep(0.2)
            return real(*args, **kwargs)
        cache.load_item = slow

        from covid19_images import load_covid_xray
        load_covid_xray("torch", root={str(root)!r}, split=None, image_size=40, cache=True,
                        cache_dir={str(cache_dir)!r})
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(cache_dir.glob(".*.tmp.npy")):
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the fill never started"
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert list(cache_dir.glob(".*.tmp.npy")), "the killed fill leaves only its temporary file"
    assert not _arrays(cache_dir)
    dataset = load_covid_xray("torch", root=root, split=None, image_size=40, cache=True, cache_dir=cache_dir)
    assert len(_arrays(cache_dir)) == 1 and not list(cache_dir.glob(".*.tmp.npy"))
    fresh = load_covid_xray("torch", root=root, split=None, image_size=40)
    assert all(torch.equal(dataset[i][0], fresh[i][0]) for i in range(len(fresh)))


def test_key_covers_order_frames_and_settings(root: Path) -> None:
    from covid19_images.loaders import load_manifest
    from covid19_images.loaders._options import make_options
    from covid19_images.loaders._select import select

    selection = select(load_manifest(root), make_options("xray", root=root, split=None))
    key = cache_key(selection, (64, 64), 3)
    assert key == cache_key(selection, (64, 64), 3)
    assert key != cache_key(selection, (64, 65), 3) and key != cache_key(selection, (64, 64), 1)
    reordered = type(selection)(selection.items.iloc[::-1].reset_index(drop=True), selection.classes, selection.root)
    assert cache_key(reordered, (64, 64), 3) != key
