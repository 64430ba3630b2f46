"""The ``s3`` portal (AWS Open Data, anonymous): ListObjectsV2 pages followed, keys kept inside the folder,
sizes and our sha256 pinned (no checksum published), a broken listing refused with its reason."""

from __future__ import annotations

from pathlib import Path

import git
import pytest
import yaml

from covid19_images.sources.portal.fetch import fetch_source
from covid19_images.sources.portal.http import PortalError
from covid19_images.sources.portal.update import update_lock
from covid19_images.sources.registry import load_registry
from covid19_images.testing.portal_server import PortalServer, point_root_at

BUCKET = {
    "name": "bucket-mini",
    "kind": "portal",
    "portal": "s3",
    "dataset": "mini-bucket",
    "version": "1",
    "parser": "stoic2021",
    "modalities": ["ct"],
    "license": "CC-BY-NC-4.0",
    "terms_url": "https://registry.opendata.aws/mini-bucket/",
    "files": [{"name": "data/mha/"}, {"name": "metadata/"}],
}
OBJECTS = {f"data/mha/{n}.mha": bytes([n]) * (100 + n) for n in range(1, 6)} | {
    "metadata/reference.csv": b"PatientID,probCOVID,probSevere\n1,1,0\n",
    "other/not-wanted.txt": b"outside the prefixes",
}


def root_with(tmp_path: Path, server: PortalServer) -> Path:
    root = tmp_path / "root"
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "test")
        config.set_value("user", "email", "test@example.invalid")
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": [BUCKET]}, sort_keys=False))
    point_root_at(root, server)
    return root


def test_every_page_of_the_listing_is_pinned_and_fetched(tmp_path: Path, server: PortalServer) -> None:
    server.add_s3_bucket("mini-bucket", OBJECTS)
    server.state.s3_page = 2
    root = root_with(tmp_path, server)
    spec = load_registry(root)["bucket-mini"]
    _old, lock = update_lock(root, spec, version="1", progress=False)
    wanted = {k: v for k, v in OBJECTS.items() if not k.startswith("other/")}
    assert {e.path: e.size for e in lock.entries} == {k: len(v) for k, v in wanted.items()}
    assert {e.portal_hash for e in lock.entries} == {""}
    assert all(e.locator == f"https://mini-bucket.s3.amazonaws.com/{e.path}" for e in lock.entries)
    assert len(server.requests_for("list-type=2&prefix=data")) == 3  # 5 keys, 2 per page
    fetch_source(root, spec, progress=False)
    folder = root / "datasets" / "bucket-mini"
    assert {k: (folder / k).read_bytes() for k in wanted} == wanted


def test_a_key_that_leaves_the_folder_is_refused_by_name(tmp_path: Path, server: PortalServer) -> None:
    server.add_s3_bucket("mini-bucket", {"data/mha/../../escape.mha": b"x"})
    root = root_with(tmp_path, server)
    with pytest.raises(PortalError, match=r"object key 'data/mha/\.\./\.\./escape\.mha' cannot be a path"):
        update_lock(root, load_registry(root)["bucket-mini"], version="1", progress=False)


def test_a_listing_that_is_not_xml_is_refused(tmp_path: Path, server: PortalServer) -> None:
    server.add_s3_bucket("mini-bucket", OBJECTS)
    root = root_with(tmp_path, server)
    server.state.content["/mini-bucket.s3.amazonaws.com/"] = b"<html>maintenance</htm"
    server.state.s3_keys.clear()
    with pytest.raises(PortalError, match="not a ListObjectsV2 answer"):
        update_lock(root, load_registry(root)["bucket-mini"], version="1", progress=False)
