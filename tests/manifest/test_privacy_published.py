"""Publisher-assigned ids (RSNA's patientId, TCIA's subject ids) in file names: declared, not refused.

RSNA's DICOMs carry the random patientId of ``<patientId>.dcm`` as PatientID and PatientName;
the privacy check would drop every such row as "identifying value in the path". A source
declares those keywords (``options: {published_ids: [PatientID, PatientName]}``); every other
identifying tag is still checked, and only PatientID/PatientName can be declared.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import yaml

from covid19_images.manifest.build import build_manifest
from covid19_images.sources.portal.fetch import fetch_source
from covid19_images.sources.portal.update import update_lock
from covid19_images.sources.registry import load_registry
from covid19_images.testing.miniature import miniature_dir
from covid19_images.testing.portal_miniatures import fetched_miniature_root, serve_miniature
from covid19_images.testing.portal_server import point_root_at, running_with_kaggle_token

SOURCE = "rsna-pneumonia"


def build(tmp_path: Path, options: dict | None) -> tuple[set[str], list[str]]:
    root = tmp_path / "root"
    target = root / "datasets" / SOURCE
    if not target.exists():  # fetched once from the loopback portal, as a user gets it
        with running_with_kaggle_token("privacy-token") as server:
            fetched_miniature_root(root, server, [SOURCE])
    item = SOURCE if options is None else {"name": SOURCE, "options": options}
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": [item]}))
    result = build_manifest(root, load_registry(root), progress=False)
    paths = {p.removeprefix(f"datasets/{SOURCE}/") for p in result.manifest["path"]}
    return paths, [p.message for p in result.problems if "left out of the manifest" in p.message]


def repin(root: Path, folder: Path) -> None:
    """``sync --update-portal`` against a portal now serving ``folder``: the new lock, then the fetch."""
    spec = load_registry(root)[SOURCE]
    with running_with_kaggle_token("privacy-token") as server:
        serve_miniature(server, spec, folder)
        point_root_at(root, server)
        update_lock(root, spec, version=spec.version, progress=False)
        fetch_source(root, spec, progress=False)


def test_declared_publisher_ids_keep_the_rows_other_tags_still_refuse(tmp_path: Path) -> None:
    images = {p.relative_to(miniature_dir(SOURCE)).as_posix() for p in miniature_dir(SOURCE).rglob("*.dcm")}
    declared, refused = build(tmp_path, None)  # the catalog entry declares PatientID and PatientName
    assert declared == images and not refused

    undeclared, refused = build(tmp_path, {})
    assert not undeclared and len(refused) == len(images)

    # the portal's copy gains an institution named like the file (still identifying); a maintainer re-pins it
    changed = shutil.copytree(miniature_dir(SOURCE), tmp_path / "changed-upstream")
    victim = sorted((changed / "stage_2_train_images").glob("*.dcm"))[0]
    ds = pydicom.dcmread(victim)
    ds.InstitutionName = victim.stem
    ds.save_as(victim)
    repin(tmp_path / "root", changed)
    kept, refused = build(tmp_path, None)
    assert f"stage_2_train_images/{victim.name}" not in kept and len(kept) == len(images) - 1
    assert len(refused) == 1 and "InstitutionName" in refused[0]

    birth = {"published_ids": ["PatientID", "PatientName", "InstitutionName"]}  # not declarable
    kept, refused = build(tmp_path, birth)
    assert len(kept) == len(images) - 1 and len(refused) == 1
