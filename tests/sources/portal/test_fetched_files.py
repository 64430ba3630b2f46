"""A fetched folder is trusted only while its files are there: a deleted or truncated one is noticed.

The fetch marker records each file's size; sync, the loaders and ``verify`` check them (one
``stat`` per file) and name the source, the file and the fetch command; ``fetch`` restores
the damaged entry from the kept, verified download, without asking the portal again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from covid19_images import load_covid_ct
from covid19_images.cli import main
from covid19_images.loaders import MedicalWarning
from covid19_images.loaders._select import DataNotAvailableError
from covid19_images.manifest.build import read_manifest
from covid19_images.quality.verify import verify
from covid19_images.sources.portal.state import presence, source_dir
from covid19_images.sync.run import sync
from tests.sources.portal.conftest import ZENODO_SOURCE

pytestmark = pytest.mark.filterwarnings("ignore", category=MedicalWarning)
VOLUME = "ct_scans/coronacases_org_001.nii.gz"


def _cli(root: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--root", str(root)], catch_exceptions=False)


@pytest.fixture
def fetched(portal_root: Path) -> Path:
    assert _cli(portal_root, "sync", "--update-portal", ZENODO_SOURCE, "--quiet").exit_code == 0
    assert presence(portal_root, ZENODO_SOURCE).complete
    return portal_root


def _damage(root: Path, how: str) -> bytes:
    target = source_dir(root, ZENODO_SOURCE) / VOLUME
    original = target.read_bytes()
    if how == "deleted":
        target.unlink()
    else:
        target.write_bytes(original[: len(original) // 2])
    return original


@pytest.mark.parametrize("how", ["deleted", "truncated"])
def test_sync_names_the_damaged_file_keeps_the_rows_and_fetch_restores_it(fetched: Path, server, how: str) -> None:
    before = read_manifest(fetched)
    original = _damage(fetched, how)
    state = presence(fetched, ZENODO_SOURCE)
    assert not state.complete and state.damaged == (VOLUME,)

    report = sync(fetched, offline=True, progress=False)
    messages = [p.message for p in report.build.problems if p.source == ZENODO_SOURCE]
    assert len(messages) == 1
    assert f"datasets/{ZENODO_SOURCE}/{VOLUME}" in messages[0]
    assert f"run `covid19-images fetch {ZENODO_SOURCE}`" in messages[0] and "kept its 2 rows" in messages[0]
    after = read_manifest(fetched)
    assert after[after["source"] == ZENODO_SOURCE].equals(before[before["source"] == ZENODO_SOURCE])

    downloads = len(server.requests_for("/files/"))
    result = _cli(fetched, "fetch", ZENODO_SOURCE)
    assert result.exit_code == 0, result.output
    assert (source_dir(fetched, ZENODO_SOURCE) / VOLUME).read_bytes() == original
    assert len(server.requests_for("/files/")) == downloads  # restored from the kept, verified download
    assert presence(fetched, ZENODO_SOURCE).complete


def test_a_loader_refuses_a_truncated_fetched_image_by_name(fetched: Path) -> None:
    pytest.importorskip("torch")
    _damage(fetched, "truncated")
    with pytest.raises(DataNotAvailableError) as refused:
        load_covid_ct("torch", root=fetched, sources=[ZENODO_SOURCE], split=None, image_size=32)
    message = str(refused.value)
    assert f"datasets/{ZENODO_SOURCE}/{VOLUME} (fetched, then deleted or changed size)" in message
    assert f"run `covid19-images fetch {ZENODO_SOURCE}`" in message
    with pytest.warns(UserWarning, match="left out"):
        served = load_covid_ct(
            "torch", root=fetched, sources=[ZENODO_SOURCE], split=None, image_size=32, only_fetched=True
        )
    assert f"datasets/{ZENODO_SOURCE}/{VOLUME}" not in set(served.manifest["path"]) and len(served) > 0


def test_verify_names_the_fetch_command_for_a_changed_portal_file(fetched: Path) -> None:
    _damage(fetched, "truncated")
    result = verify(fetched, progress=False)
    changed = [item for item in result.changed if item["source"] == ZENODO_SOURCE]
    assert [item["path"] for item in changed] == [f"datasets/{ZENODO_SOURCE}/{VOLUME}"]
    assert f"`covid19-images fetch {ZENODO_SOURCE}`" in changed[0]["hint"]


def test_without_a_lock_the_sync_summary_says_not_pinned(portal_root: Path) -> None:
    report = sync(portal_root, offline=False, progress=False)
    assert f"not pinned: run `covid19-images sync --update-portal {ZENODO_SOURCE}`" in report.summary()
