"""The manifest stamp a loader keeps: the hash of the bytes its rows came from, taken from the read.

Building a loader reads the manifest once and hashes it once (the integrity check's hash);
the stamp still refuses a manifest whose bytes changed and accepts one rewritten unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from covid19_images.loaders._manifest import ManifestChanged, ManifestStamp, selection_for
from covid19_images.loaders._options import make_options
from covid19_images.manifest.integrity import record_path, write_record
from tests.conftest import build_synced_root

pytestmark = pytest.mark.upstream


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("stamp"), mirrors, ["darshan-xray"])


def _manifest(root: Path) -> Path:
    return root / "manifests" / "manifest.csv"


def test_the_stamp_holds_the_hash_the_read_computed_and_no_second_one(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    real_digest = ManifestStamp._digest

    def counted(self: ManifestStamp) -> str | None:
        hashed.append(self.path)
        return real_digest(self)

    monkeypatch.setattr(ManifestStamp, "_digest", counted)
    selection = selection_for(make_options("xray", root=root, split=None))
    data = _manifest(root).read_bytes()
    recorded = json.loads(record_path(_manifest(root)).read_text(encoding="utf-8"))["sha256"]
    assert selection.stamp.digest == hashlib.sha256(data).hexdigest() == recorded
    assert hashed == []  # the loader build did not hash the manifest again
    selection.stamp.check()  # unchanged: served
    assert hashed == []  # and a check of an unchanged file is one stat


def test_a_rewrite_with_the_same_bytes_is_accepted_and_other_bytes_are_refused(root: Path) -> None:
    manifest = _manifest(root)
    original = manifest.read_bytes()
    selection = selection_for(make_options("xray", root=root, split=None))
    try:
        fresh = manifest.with_name("manifest.csv.new")
        fresh.write_bytes(original)
        os.replace(fresh, manifest)  # a sync that changed nothing: a new file, the same bytes
        selection.stamp.check()
        header, first, *rest = original.split(b"\n")
        changed = b"\n".join([header, *rest[:-1], first, b""])  # the same rows in another order
        write_record(manifest, changed)
        fresh.write_bytes(changed)
        os.replace(fresh, manifest)
        with pytest.raises(ManifestChanged, match="changed since this loader was built"):
            selection.stamp.check()
    finally:
        write_record(manifest, original)
        manifest.write_bytes(original)


def test_a_stamp_without_a_read_hashes_the_file_itself(root: Path) -> None:
    # a release's rows come from git: the stamp watches the file on disk and hashes it
    stamp = ManifestStamp(root).settle(None)
    assert stamp.digest == hashlib.sha256(_manifest(root).read_bytes()).hexdigest()
