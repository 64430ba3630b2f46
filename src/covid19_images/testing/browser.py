"""Driving the browser for tests and screenshots: a real server process and headless Chromium.

The server is started the way a user starts it (``covid19-images browse`` in its own process,
on a free port of 127.0.0.1), and the pages are read by Debian's ``chromium`` through its
``chromedriver`` with Selenium: the browser downloads of Selenium Manager and Playwright are
not reachable here, so the binaries are named, never fetched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = os.environ.get("COVID19_IMAGES_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("COVID19_IMAGES_CHROMEDRIVER", "/usr/bin/chromedriver")


def chromium_missing() -> str:
    """Why headless Chromium cannot run here ("" when it can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return f"{path} not found: `apt-get install chromium chromium-driver` (what .ci/run does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return ""


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy


def fetch(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    """(status, body) of one request to the local server; 4xx/5xx are answers, not exceptions,
    and no answer at all (nothing listening yet) is status 0."""
    try:
        with _DIRECT.open(urllib.request.Request(url, data=data), timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, ConnectionError) as err:
        return 0, str(err).encode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_browser(root: Path, *, review: bool = False, timeout: float = 60.0) -> Iterator[str]:
    """``covid19-images browse`` on a free port in a child process; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "covid19_images.cli", "browse", "--root", str(root), "--port", str(port)]
    import covid19_images

    package_parent = str(Path(covid19_images.__file__).resolve().parents[1])  # this very code, not another install
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in finally; a file, not a pipe, never blocks
    process = subprocess.Popen([*command, *(["--review"] if review else [])], stderr=log, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with _DIRECT.open(f"{base}/static/style.css", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"browse exited: {log.read()[-3000:]}") from err
                if time.monotonic() > deadline:
                    raise TimeoutError(f"browse did not answer on {base} within {timeout:.0f} s") from err
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900):
    """A headless Chromium WebDriver (Selenium), quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-proxy-server",
        f"--window-size={width},{height}",
        "--allow-file-access-from-files",
    ):
        options.add_argument(argument)
    user_data = Path(os.environ.get("TMPDIR", "/tmp")) / f"covid19-images-chromium-{os.getpid()}-{time.monotonic_ns()}"
    options.add_argument(f"--user-data-dir={user_data}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(user_data, ignore_errors=True)
