"""A clean checkout's files read from its git index equal the folder walked (sources.listing.tracked_listing).

Every case runs real git on a real checkout. Where the index cannot say what is in the folder
(a symlink, a nested repository, a sparse checkout's skip-worktree file, an assume-unchanged
file, a name that is not UTF-8) the answer is None and the build walks the folder; the
end-to-end tests prove a sync of such a checkout lists what is really there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from covid19_images.core.schema import Entry
from covid19_images.manifest import source_build
from covid19_images.manifest.build import empty_manifest
from covid19_images.manifest.source_build import checkout_state
from covid19_images.sources.listing import list_files, tracked_listing
from covid19_images.sources.spec import SourceSpec
from covid19_images.sync.run import sync
from tests.badinputs import SHARED, real_image
from tests.hostile_world import CLASS, World, make_world


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)
    return done.stdout.decode("utf-8", "surrogateescape")


def _checkout(folder: Path, files: dict[str, bytes]) -> Path:
    """A git repository holding ``files`` (posix relative path -> bytes), committed."""
    folder.mkdir()
    _git(folder, "init", "-q")
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    _git(folder, "add", "-A")
    _git(folder, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "files")
    return folder


def _index(folder: Path) -> str:
    return _git(folder, "ls-files", "-s", "-v", "-z")


NAMES = {
    "a.png": b"a",
    "images/b c.jpeg": b"b",  # a space
    "images/tab\there.jpeg": b"t",  # the field separator of ls-files' records, inside a name
    "images/new\nline.png": b"n",  # the record separator of git's output without -z
    "images/deep/er/café.png": b"c",  # NFC
    "images/deep/er/cafe\u0301.png": b"d",  # NFD: another name
    "Z_upper.png": b"z",  # sorts before the lower-case names
    "metadata.csv": b"x,y\n",
    "images/a-b.png": b"1",  # '-' sorts before '/' in bytes: the order must be list_files'
    "images/a/b.png": b"2",
}


def test_a_clean_checkout_gives_what_the_walk_gives(tmp_path: Path) -> None:
    folder = _checkout(tmp_path / "co", NAMES)
    (folder / "run.sh").write_text("#!/bin/sh\n")
    (folder / "run.sh").chmod(0o755)  # an executable file: mode 100755
    _git(folder, "add", "run.sh")
    listed = tracked_listing(_index(folder))
    assert listed is not None
    assert list(listed) == list(list_files(folder))
    assert sorted([*NAMES, "run.sh"]) == sorted(listed)
    assert listed.skipped == []


def test_a_tracked_symlink_sends_the_build_to_the_walk(tmp_path: Path) -> None:
    folder = _checkout(tmp_path / "co", {"a.png": b"a"})
    os.symlink("a.png", folder / "link.png")
    _git(folder, "add", "link.png")
    assert tracked_listing(_index(folder)) is None


def test_a_sparse_checkouts_absent_file_sends_the_build_to_the_walk(tmp_path: Path) -> None:
    folder = _checkout(tmp_path / "co", {"a.png": b"a", "b.png": b"b"})
    _git(folder, "update-index", "--skip-worktree", "b.png")
    (folder / "b.png").unlink()
    assert _git(folder, "status", "--porcelain", "--untracked-files=all", "--ignored") == ""  # git calls it clean
    assert tracked_listing(_index(folder)) is None
    assert list(list_files(folder)) == ["a.png"]


def test_an_assume_unchanged_file_sends_the_build_to_the_walk(tmp_path: Path) -> None:
    folder = _checkout(tmp_path / "co", {"a.png": b"a", "b.png": b"b"})
    _git(folder, "update-index", "--assume-unchanged", "b.png")
    (folder / "b.png").unlink()
    assert _git(folder, "status", "--porcelain", "--untracked-files=all", "--ignored") == ""
    assert tracked_listing(_index(folder)) is None


def test_a_nested_repository_sends_the_build_to_the_walk(tmp_path: Path) -> None:
    folder = _checkout(tmp_path / "co", {"a.png": b"a"})
    nested = _checkout(folder / "inner", {"b.png": b"b"})
    head = _git(nested, "rev-parse", "HEAD").strip()
    _git(folder, "update-index", "--add", "--cacheinfo", f"160000,{head},inner")  # a gitlink
    assert tracked_listing(_index(folder)) is None


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that stores names as bytes")
def test_a_name_that_is_not_utf8_sends_the_build_to_the_walk(tmp_path: Path) -> None:
    folder = _checkout(tmp_path / "co", {"a.png": b"a"})
    Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.png")).write_bytes(b"c")
    _git(folder, "add", "-A")
    assert tracked_listing(_index(folder)) is None
    assert [reason for _, reason in list_files(folder).skipped]  # the walk reports it


def test_an_empty_index_lists_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "co"
    folder.mkdir()
    _git(folder, "init", "-q")
    assert tracked_listing(_index(folder)) == []


def test_checkout_state_reads_the_index_only_for_a_clean_checkout(tmp_path: Path) -> None:
    folder = _checkout(tmp_path / "co", {"a.png": b"a", "images/b.png": b"b"})
    commit, blobs, modified, listing = checkout_state(folder, clean=True)
    assert commit == _git(folder, "rev-parse", "HEAD").strip()
    assert set(blobs) == {"a.png", "images/b.png"}
    assert blobs["a.png"] == _git(folder, "rev-parse", "HEAD:a.png").strip()
    assert (modified, listing) == (set(), ["a.png", "images/b.png"])
    (folder / "a.png").write_bytes(b"changed")
    _commit, _blobs, modified, listing = checkout_state(folder)  # not known clean: git is asked what changed
    assert (modified, listing) == ({"a.png"}, None)


def test_a_file_the_index_does_not_hold_is_missing_and_never_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing from a clean checkout's index is complete. A path a parser gives that the index does
    not hold (a file git could not see, behind a folder it could not read, where a link might lead out
    of the folder) is reported as missing, never looked up on disk. As root no folder can be hidden
    from git, so the test commits one image, adds the other untracked, and builds as a status blind to
    it would say (clean); without that word the folder is walked and both images are rows. The parser
    names both paths without asking ``ctx.exists`` (the real parsers ask first and report it there)."""
    root = tmp_path / "root"
    (root / "datasets").mkdir(parents=True)
    folder = _checkout(root / "datasets" / "alpha", {"a.png": b""})
    Image.new("L", (16, 16), 90).save(folder / "a.png")
    _git(folder, "add", "-A")
    _git(folder, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "the image")
    Image.new("L", (16, 16), 90).save(folder / "b.png")  # on disk, not in the index
    spec = SourceSpec("alpha", "https://github.com/example/alpha.git", "master", "alpha", ("xray",), "CC0-1.0")

    def blind(ctx):
        yield Entry(path="a.png", modality="xray", row="list line 1")
        yield Entry(path="b.png", modality="xray", row="list line 2")

    monkeypatch.setattr(source_build, "get_parser", lambda name: blind)

    def names(built) -> list[str]:
        return sorted(path.rsplit("/", 1)[-1] for path in built.rows["path"])

    known_clean = source_build.build_source(root, spec, empty_manifest(), progress=False, clean=True)
    assert names(known_clean) == ["a.png"]
    missing = [p.path for p in known_clean.problems if p.message == "metadata points at a missing file"]
    assert missing == ["b.png"]
    walked = source_build.build_source(root, spec, empty_manifest(), progress=False)
    assert names(walked) == ["a.png", "b.png"]


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/upstream")


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


@needs_shared
@pytest.mark.upstream
@pytest.mark.parametrize("flag", ["--skip-worktree", "--assume-unchanged"])
def test_a_sync_lists_what_a_sparse_or_assumed_checkout_really_holds(world: World, flag: str) -> None:
    (world.tree / CLASS / "b.jpeg").write_bytes(real_image("000002-14.jpg"))
    (world.tree / CLASS / "c.jpeg").write_bytes(real_image("000002-11-b.jpg"))
    world.publish()
    world.sync()
    assert world.rows() == ["a.jpeg", "b.jpeg", "c.jpeg"]
    checkout = world.root / "datasets" / "darsh"
    _git(checkout, "update-index", flag, f"{CLASS.as_posix()}/b.jpeg")
    (checkout / CLASS / "b.jpeg").unlink()  # git status still says clean
    report = sync(world.root, offline=True, rebuild=True, progress=False)
    assert not [p for p in report.build.problems if "b.jpeg" in p.path]  # not listed, so not probed
    assert world.rows() == ["a.jpeg", "c.jpeg"]
