"""cache=True onto a disk that cannot hold the cache (issue 14): an OSError with a clear message, never SIGBUS.

Runs the real loader in a subprocess (a SIGBUS would kill the test runner) against a real
full file system: a 2 MB tmpfs when we may mount one (root), and a real ``RLIMIT_FSIZE``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.badinputs import SHARED, real_image
from tests.hostile_world import CLASS, World, make_world, mounted_tmpfs, source_env

pytestmark = [
    pytest.mark.upstream,
    pytest.mark.framework,
    pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/upstream"),
    pytest.mark.skipif(sys.platform != "linux", reason="tmpfs, RLIMIT_FSIZE"),
]

LOAD = textwrap.dedent(
    """
    import sys
    from covid19_images import load_covid_xray
    from covid19_images.loaders.cache import CacheSpaceError
    try:
        load_covid_xray("torch", root=sys.argv[1], split=None, image_size=1024, cache=True, cache_dir=sys.argv[2])
    except CacheSpaceError as err:
        print("REFUSED:", err)
        sys.exit(3)
    print("LOADED")
    """
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    w = make_world(tmp_path_factory.mktemp("cachedisk"))
    (w.tree / CLASS / "b.jpeg").write_bytes(real_image("000002-14.jpg"))
    w.publish()
    w.sync()
    return w


def _run(world: World, cache_dir: Path, limit: int | None = None) -> subprocess.CompletedProcess:
    def restrict() -> None:
        if limit is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-c", LOAD, str(world.root), str(cache_dir)],
        capture_output=True,
        text=True,
        env=source_env(),
        preexec_fn=restrict,
        check=False,
        timeout=300,
    )


def _assert_refused_cleanly(out: subprocess.CompletedProcess, cache_dir: Path) -> None:
    assert out.returncode != -signal.SIGBUS and out.returncode != 128 + signal.SIGBUS, "SIGBUS"
    assert out.returncode == 3, (out.returncode, out.stdout, out.stderr[-2000:])
    assert "cannot reserve" in out.stdout and "cache_dir" in out.stdout
    left = [p.name for p in cache_dir.iterdir() if not p.name.endswith(".lock")]
    assert left == [], f"left behind: {left}"


def test_cache_onto_a_full_tmpfs_is_an_error_not_sigbus(world: World, tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "small", "size=2m") as mount:
        _assert_refused_cleanly(_run(world, mount), mount)


def test_cache_over_the_file_size_limit_is_an_error_not_sigbus(world: World, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    _assert_refused_cleanly(_run(world, cache_dir, limit=2 * 1024 * 1024), cache_dir)


def test_cache_on_a_read_only_folder_says_so(world: World, tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "ro", "size=2m,ro") as mount:
        out = _run(world, mount)
        assert out.returncode == 3, (out.stdout, out.stderr[-2000:])
        assert "cannot use" in out.stdout and "cache_dir" in out.stdout
