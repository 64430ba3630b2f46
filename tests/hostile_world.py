"""A one-source world for the issue-14 tests: a darshan-layout upstream of real images, a synced root."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from covid19_images.manifest.build import read_manifest
from covid19_images.sync.run import sync
from tests.badinputs import Upstream, make_root, real_image

CLASS = Path("ValData") / "COVID-19"  # a darshan-layout upstream: every image file under a class folder is a row
PROJECT = Path(__file__).resolve().parents[1]


def source_env() -> dict[str, str]:
    """The environment for a child Python that must import this checkout's package."""
    return {**os.environ, "PYTHONPATH": str(PROJECT / "src")}


@contextmanager
def mounted_tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A real small or read-only file system at ``where`` (root only: the test skips elsewhere)."""
    where.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs ({options}) here: {made.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@dataclass
class World:
    root: Path
    mirror: Path
    upstream: Upstream
    tree: Path

    def publish(self) -> None:
        self.upstream.publish(self.tree)

    def sync(self, **kwargs):
        report = sync(self.root, mirror=self.mirror, progress=False, **kwargs)
        assert not report.failed, report.summary()
        return report

    def rows(self) -> list[str]:
        manifest = read_manifest(self.root)
        return sorted(manifest["path"].str.rsplit("/", n=1).str[-1])


def make_world(tmp_path: Path) -> World:
    mirror = tmp_path / "mirror"
    tree = tmp_path / "tree"
    (tree / CLASS).mkdir(parents=True)
    (tree / CLASS / "a.jpeg").write_bytes(real_image("000005-5-b.jpg"))
    w = World(tmp_path / "root", mirror, Upstream(mirror, "example", "darsh"), tree)
    w.publish()
    make_root(w.root, [{"name": "darsh", "url": w.upstream.url, "parser": "darshan-xray", "modalities": ["xray"]}])
    w.sync()
    assert w.rows() == ["a.jpeg"]
    return w
