"""Hostile file names and non-files in an upstream (issue 14), through real git mirrors and real syncs.

A name that is not UTF-8, two Unicode normalisations of one name, a symlink loop, a broken
symlink, a FIFO: each is at most one problem naming that file (undecodable bytes shown as
backslash escapes), the rest of the source builds, and later syncs and ``verify`` still work.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from pathlib import Path

import pytest

from covid19_images.manifest.build import PROBLEMS_FILE, read_manifest
from covid19_images.quality.verify import verify
from covid19_images.sync.run import sync
from tests.badinputs import SHARED, Upstream, ieee_row, make_root, real_image, write_ieee_tree
from tests.hostile_world import CLASS, World, make_world

pytestmark = [
    pytest.mark.upstream,
    pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/upstream"),
    pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that stores names as bytes"),
]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def _problems_text(root: Path) -> str:
    return (root / PROBLEMS_FILE).read_text(encoding="utf-8")


def test_a_name_that_is_not_utf8_is_one_problem_and_later_syncs_work(world: World) -> None:
    folder = os.fsencode(world.tree / CLASS)
    Path(os.fsdecode(folder + b"/IM-0999-0001-caf\xe9.jpeg")).write_bytes(real_image("000002-14.jpg"))
    world.publish()
    report = world.sync()
    shown = [p for p in report.build.problems if "IM-0999-0001" in p.path]
    assert [p.path for p in shown] == ["ValData/COVID-19/IM-0999-0001-caf\\xe9.jpeg"]
    assert "UTF-8" in shown[0].message
    assert "caf\\xe9" in _problems_text(world.root)
    assert world.rows() == ["a.jpeg"]
    # a later sync (a new legitimate image arrives), an offline rebuild and verify all still work
    (world.tree / CLASS / "b.jpeg").write_bytes(real_image("000002-11-b.jpg"))
    world.publish()
    world.sync()
    assert world.rows() == ["a.jpeg", "b.jpeg"]
    world.sync(offline=True)
    result = verify(world.root, progress=False)
    assert result.ok, result.summary()
    result.summary()  # printable


def test_nfc_and_nfd_spellings_of_one_name_are_two_files_and_nothing_crashes(world: World) -> None:
    nfc = unicodedata.normalize("NFC", "café.jpeg")
    nfd = unicodedata.normalize("NFD", "café.jpeg")
    assert nfc != nfd
    (world.tree / CLASS / nfc).write_bytes(real_image("000002-14.jpg"))
    (world.tree / CLASS / nfd).write_bytes(real_image("000002-11-b.jpg"))
    world.publish()
    world.sync()
    assert sorted(world.rows()) == sorted(["a.jpeg", nfc, nfd])
    manifest = read_manifest(world.root)
    assert manifest["image_id"].is_unique
    assert verify(world.root, progress=False).ok


def test_symlink_loop_and_broken_symlink_are_one_problem_each(world: World) -> None:
    os.symlink("loop.jpeg", world.tree / CLASS / "loop.jpeg")
    os.symlink("gone.jpeg", world.tree / CLASS / "dangling.jpeg")
    (world.tree / CLASS / "new.jpeg").write_bytes(real_image("000002-14.jpg"))
    world.publish()
    report = world.sync()
    about = {p.path: p.message for p in report.build.problems if p.source == "darsh"}
    assert "symlink loop" in about["ValData/COVID-19/loop.jpeg"]
    assert "broken symlink" in about["ValData/COVID-19/dangling.jpeg"]
    assert world.rows() == ["a.jpeg", "new.jpeg"]  # the source is not frozen: the new image arrived


def test_a_fifo_in_a_checkout_is_never_read_and_reported_when_the_folder_is_walked(world: World) -> None:
    checkout = world.root / "datasets" / "darsh"
    os.mkfifo(checkout / CLASS / "pipe.jpeg")
    # rebuild: a source whose commit and clean checkout are cached is not listed again, and git
    # cannot commit a FIFO, so one only appears in a checkout by hand. git status does not show
    # one either: the checkout stays clean, its files come from the index and the pipe is not
    # among them (sources.listing.tracked_listing)
    report = world.sync(offline=True, rebuild=True)  # would block forever opening the pipe
    assert not [p for p in report.build.problems if "pipe" in p.path]
    assert world.rows() == ["a.jpeg"]
    # with an untracked file beside it the checkout is not clean, so the folder is walked
    (checkout / CLASS / "extra.txt").write_text("not an image\n")
    report = world.sync(offline=True, rebuild=True)
    about = {p.path: p.message for p in report.build.problems}
    assert "FIFO" in about["ValData/COVID-19/pipe.jpeg"]
    assert world.rows() == ["a.jpeg"]
    verify(world.root, progress=False)  # would block forever sniffing the pipe


def test_a_metadata_field_of_any_length_keeps_its_row(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    upstream = Upstream(mirror, "example", "alpha")
    names = ["000005-5-b.jpg", "000002-14.jpg"]
    notes = "long clinical notes, " * 20_000  # 420 KB in one quoted cell (csv's default limit is 128 KiB)
    rows = [ieee_row(names[0], patientid="1", clinical_notes=notes), ieee_row(names[1], patientid="2")]
    upstream.publish(write_ieee_tree(tmp_path / "tree", {n: real_image(n) for n in names}, rows))
    root = make_root(tmp_path / "root", [{"name": "alpha", "url": upstream.url}])
    report = sync(root, mirror=mirror, progress=False)
    assert not [p for p in report.build.problems if "malformed" in p.message or "field" in p.message]
    assert sorted(read_manifest(root)["path"].str.rsplit("/", n=1).str[-1]) == sorted(names)
