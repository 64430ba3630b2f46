"""A data root pointed (by git ``insteadOf``) at a loopback portal server serving the miniatures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import git
import pytest
import yaml

from covid19_images.sources.portal.http import BACKOFF_ENV
from covid19_images.sources.registry import load_registry
from covid19_images.testing.portal_miniatures import serve_miniature
from covid19_images.testing.portal_server import PortalServer, point_root_at

ZENODO_SOURCE = "covid19-ct-seg"
#: a local portal source of the test's own making: one Zenodo file big enough to cut in many places
BIG = {
    "name": "big-zenodo",
    "kind": "portal",
    "portal": "zenodo",
    "dataset": "424242",
    "version": "424242",
    "parser": ZENODO_SOURCE,
    "modalities": ["ct"],
    "license": "CC0-1.0",
    "terms_url": "https://zenodo.org/records/424242",
    "files": [{"name": "volumes.zip", "into": "ct_scans"}],
}
KAGGLE = {
    "name": "kaggle-mini",
    "kind": "portal",
    "portal": "kaggle",
    "dataset": "someone/kaggle-mini",
    "version": "2",
    "parser": ZENODO_SOURCE,
    "modalities": ["ct"],
    "license": "CC0-1.0",
    "terms_url": "https://www.kaggle.com/datasets/someone/kaggle-mini",
}
TCIA = {
    "name": "tcia-mini",
    "kind": "portal",
    "portal": "tcia",
    "dataset": "TEST-COLLECTION",
    "version": "1",
    "parser": ZENODO_SOURCE,
    "modalities": ["xray"],
    "license": "CC-BY-4.0",
    "terms_url": "https://www.cancerimagingarchive.net/data-usage-policies-and-restrictions/",
    "files": [{"name": "clinical.csv", "url": "https://wiki.cancerimagingarchive.net/download/clinical.csv"}],
}
MANUAL = {
    "name": "manual-mini",
    "kind": "portal",
    "portal": "manual",
    "dataset": "BIMCV-COVID19-cIter_1_2_3",
    "version": "iter3",
    "parser": ZENODO_SOURCE,
    "modalities": ["xray"],
    "license": "BIMCV-RUA",
    "terms_url": "https://bimcv.cipf.es/bimcv-projects/bimcv-covid19/",
    "files": [{"name": "subjects_1.tgz"}],
}
#: two series of two patients, as NBIA lists them
SERIES = [
    {"PatientID": "A000001", "StudyInstanceUID": "1.2.3.1", "SeriesInstanceUID": "1.2.3.1.1", "Modality": "CR",
     "files": {"1-1.dcm": b"DICM-one"}},
    {"PatientID": "A000002", "StudyInstanceUID": "1.2.3.2", "SeriesInstanceUID": "1.2.3.2.1", "Modality": "CR",
     "files": {"1-1.dcm": b"DICM-two", "1-2.dcm": b"DICM-three"}},
]  # fmt: skip
KAGGLE_USER, KAGGLE_SECRET = "tester", "s3cret-token-value"


def big_payload(size: int = 600_000, seed: int = 7) -> dict[str, bytes]:
    """Incompressible volumes (random bytes: the zip is as big as they are), in the big source's folder."""
    import random

    rng = random.Random(seed)
    return {"case_1.nii.gz": rng.randbytes(size), "case_2.nii.gz": rng.randbytes(size // 3)}


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKOFF_ENV, "0.001")
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[PortalServer]:
    running = PortalServer().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def portal_root(tmp_path: Path, server: PortalServer) -> Path:
    """A git data root holding the Zenodo catalog source and two local portal sources, all served."""
    root = tmp_path / "root"
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "test")
        config.set_value("user", "email", "test@example.invalid")
    (root / "sources.yaml").write_text(
        yaml.safe_dump({"sources": [ZENODO_SOURCE, BIG, KAGGLE, TCIA, MANUAL]}, sort_keys=False)
    )
    registry = load_registry(root)
    serve_miniature(server, registry[ZENODO_SOURCE])
    payload = big_payload()
    from covid19_images.testing.portal_server import deterministic_zip

    server.add_zenodo_record("424242", {"volumes.zip": deterministic_zip(payload)})
    server.add_kaggle_dataset(
        "someone/kaggle-mini", "2", {"ct_scans/coronacases_org_001.nii.gz": b"\x1f\x8b" + b"0" * 64}
    )
    server.state.kaggle_auth = (KAGGLE_USER, KAGGLE_SECRET)
    server.add_tcia_collection("TEST-COLLECTION", SERIES)
    server.add_url(
        "https://wiki.cancerimagingarchive.net/download/clinical.csv", b"PatientID,finding\nA000001,COVID-19\n"
    )
    point_root_at(root, server)
    return root


def spec_of(root: Path, name: str):
    return load_registry(root)[name]


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def environ_without_kaggle() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
