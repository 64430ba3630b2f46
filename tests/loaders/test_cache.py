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
from PIL import Image

from covid19_images import load_covid_xray
from covid19_images.loaders.cache import cache_key
from covid19_images.manifest.build import read_manifest
from tests.conftest import build_synced_root

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
    """Upstream edits one picture's pixels (no new duplicate, same item count): the old cache
    must not be served, the new one holds the new pixels."""
    from covid19_images.sync.run import sync

    copy = tmp_path / "root"
    shutil.copytree(root, copy, symlinks=True)
    cache_dir = tmp_path / "cache"
    kwargs = {"root": copy, "split": None, "image_size": 64, "cache": True, "cache_dir": cache_dir}
    before = load_covid_xray("torch", **kwargs)
    (old_file,) = _arrays(cache_dir)
    rows = before.manifest.reset_index(drop=True)
    position = int(rows.index[rows["format"] == "jpeg"][0])
    target, old_sha = rows["path"].iloc[position], rows["sha256"].iloc[position]
    with Image.open(copy / target) as image:  # mirror it left-right: same size, other pixels
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(copy / target, "JPEG", quality=95)
    sync(copy, offline=True, progress=False)
    assert read_manifest(copy).set_index("path").loc[target, "sha256"] != old_sha
    after = load_covid_xray("torch", **kwargs)
    assert len(after) == len(before), "the edit must not change the item count (else the count changes the key)"
    assert list(after.manifest["path"]) == list(before.manifest["path"])
    assert len(_arrays(cache_dir)) == 2 and old_file in _arrays(cache_dir), "a new cache file, the old one inert"
    fresh = load_covid_xray("torch", **{**kwargs, "cache": False})
    assert not torch.equal(fresh[position][0], before[position][0]), "the pixels really changed"
    assert torch.equal(after[position][0], fresh[position][0])


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


def _selection(root: Path):
    from covid19_images.loaders import load_manifest
    from covid19_images.loaders._options import make_options
    from covid19_images.loaders._select import select

    return select(load_manifest(root), make_options("xray", root=root, split=None))


def test_key_covers_order_frames_and_settings(root: Path) -> None:
    selection = _selection(root)
    key = cache_key(selection, (64, 64), 3)
    assert key == cache_key(_selection(root), (64, 64), 3), "the same items and settings give the same key"
    assert key != cache_key(selection, (64, 65), 3) and key != cache_key(selection, (64, 64), 1)
    reordered = type(selection)(selection.items.iloc[::-1].reset_index(drop=True), selection.classes, selection.root)
    assert cache_key(reordered, (64, 64), 3) != key
    items = selection.items.copy()
    items.loc[items.index[3], "frame"] = 1  # one item served from another frame of the same file
    assert cache_key(type(selection)(items, selection.classes, selection.root), (64, 64), 3) != key
    items = selection.items.copy()
    items.loc[items.index[3], "sha256"] = "0" * 64  # one item's content changed, nothing else
    assert cache_key(type(selection)(items, selection.classes, selection.root), (64, 64), 3) != key


def test_cache_file_with_trailing_bytes_is_rebuilt(root: Path, tmp_path: Path) -> None:
    """A file longer than its header says (a bad copy, an appended block) is not trusted."""
    cache_dir = tmp_path / "cache"
    kwargs = {"root": root, "split": "train", "image_size": 40, "cache": True, "cache_dir": cache_dir}
    first = load_covid_xray("torch", **kwargs)
    (array,) = _arrays(cache_dir)
    size = array.stat().st_size
    with open(array, "ab") as handle:
        handle.write(b"\0" * 4096)
    again = load_covid_xray("torch", **kwargs)
    assert array.stat().st_size == size, "the file was rebuilt to its true size"
    assert all(torch.equal(again[i][0], first[i][0]) for i in range(len(again)))


def test_reader_change_gives_a_new_key(root: Path, tmp_path: Path) -> None:
    """The key follows the code that makes the pixels: the same package copied elsewhere gives the
    same key, the copy with an edited ``decode.py`` (a reader fix) another one."""
    import covid19_images

    package = Path(covid19_images.__file__).parent
    code = textwrap.dedent(
        """
        import sys
        from covid19_images.loaders import load_manifest
        from covid19_images.loaders._options import make_options
        from covid19_images.loaders._select import select
        from covid19_images.loaders.cache import cache_key

        root = sys.argv[1]
        print(cache_key(select(load_manifest(root), make_options("xray", root=root, split=None)), (64, 64), 3))
        """
    )

    def key_with(src: Path) -> str:
        env = {**os.environ, "PYTHONPATH": str(src)}
        out = subprocess.run(
            [sys.executable, "-c", code, str(root)], env=env, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    same = tmp_path / "same"
    shutil.copytree(package, same / "covid19_images", ignore=shutil.ignore_patterns("__pycache__"))
    edited = tmp_path / "edited"
    shutil.copytree(package, edited / "covid19_images", ignore=shutil.ignore_patterns("__pycache__"))
    with open(edited / "covid19_images" / "imaging" / "decode.py", "a") as handle:
        handle.write("\n# a reader fix\n")
    here = cache_key(_selection(root), (64, 64), 3)
    assert key_with(same) == here
    assert key_with(edited) != here


@pytest.fixture(scope="module")
def pocus_root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("cache-pocus"), mirrors, ("pocus-ultrasound",))


def test_another_frame_of_the_same_videos_gets_its_own_cache(pocus_root: Path, tmp_path: Path) -> None:
    """``video_frames="middle"`` and a stride longer than any clip serve one frame per video (the
    same files, the same count), but different frames: the second load must not reuse the first."""
    from covid19_images.loaders import load

    cache_dir = tmp_path / "cache"
    common = {"root": pocus_root, "split": None, "image_size": 48, "labels": "all"}
    middle = load("ultrasound", "torch", video_frames="middle", cache=True, cache_dir=cache_dir, **common)
    first = load("ultrasound", "torch", video_frames=100000, cache=True, cache_dir=cache_dir, **common)
    assert len(middle) == len(first) and list(middle.manifest["path"]) == list(first.manifest["path"])
    videos = [i for i, n in enumerate(middle.manifest["frames"].astype(int)) if n > 1]
    assert videos, "the sample must hold videos, or this test proves nothing"
    assert len(_arrays(cache_dir)) == 2
    fresh = load("ultrasound", "torch", video_frames=100000, **common)
    for i in videos:
        assert torch.equal(first[i][0], fresh[i][0])
    assert any(not torch.equal(first[i][0], middle[i][0]) for i in videos)
