"""The browser the page tests drive: Debian's Chromium through its chromedriver (one per test module)."""

from __future__ import annotations

import os

import pytest

from covid19_images.testing.browser import chromium, chromium_missing


@pytest.fixture(scope="module")
def driver():
    """Skips where no browser is installed, except on CI, where a missing browser is a failure."""
    missing = chromium_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the browser tests cannot run: {missing}")
        pytest.skip(missing)
    with chromium() as browser:
        yield browser
