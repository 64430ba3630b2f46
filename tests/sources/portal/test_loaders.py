"""A loader never serves a silent subset: unfetched portal images are counted per source, before serving."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from covid19_images import load_covid_ct
from covid19_images.cli import main
from covid19_images.loaders import MedicalWarning
from covid19_images.loaders._select import DataNotAvailableError
from covid19_images.sources.portal.state import source_dir
from tests.sources.portal.conftest import ZENODO_SOURCE

pytestmark = [pytest.mark.framework, pytest.mark.filterwarnings("ignore", category=MedicalWarning)]


@pytest.fixture
def synced(portal_root: Path) -> Path:
    result = CliRunner().invoke(main, ["sync", "--update-portal", ZENODO_SOURCE, "--quiet", "--root", str(portal_root)])
    assert result.exit_code == 0, result.output
    return portal_root


def test_unfetched_portal_images_are_refused_with_the_fetch_command(synced: Path) -> None:
    served = load_covid_ct("torch", root=synced, sources=[ZENODO_SOURCE], split=None, image_size=32)
    assert len(served) > 0
    shutil.rmtree(source_dir(synced, ZENODO_SOURCE))  # a clone that never fetched it
    with pytest.raises(DataNotAvailableError, match=rf"{ZENODO_SOURCE}: 2 selected image\(s\) not fetched; run "
                       rf"`covid19-images fetch {ZENODO_SOURCE}`"):  # fmt: skip
        load_covid_ct("torch", root=synced, sources=[ZENODO_SOURCE], split=None, image_size=32)


def test_only_fetched_serves_what_is_here_and_says_what_was_left_out(synced: Path) -> None:
    whole = load_covid_ct("torch", root=synced, sources=[ZENODO_SOURCE], split=None, image_size=32)
    volumes = whole.manifest.drop_duplicates("path")
    gone = synced / volumes["path"].iloc[0]
    gone.unlink()
    with pytest.warns(UserWarning, match=rf"{ZENODO_SOURCE}: 1 selected image\(s\) not fetched"):
        served = load_covid_ct(
            "torch", root=synced, sources=[ZENODO_SOURCE], split=None, image_size=32, only_fetched=True
        )
    assert set(served.manifest["path"]) == set(volumes["path"]) - {volumes["path"].iloc[0]}
