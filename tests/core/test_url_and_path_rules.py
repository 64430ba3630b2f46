"""The exact rule and message behind each refusal of ``check_url`` and ``safe_relative``.

``check_url`` layers its checks (option-like and transport-helper URLs, control characters,
the host, then the scheme), so most hostile URLs would be refused by a later layer if an
earlier one broke. These cases pin which layer answers, by the reason the user is given,
and the URLs each rule must let through.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from covid19_images.core.paths import SafePaths, UnsafePath, safe_relative
from covid19_images.sources.registry import RegistryError, check_url

OPTION_OR_HELPER = "transport helpers and option-like URLs are not allowed"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "invalid URL '': empty"),
        (None, "invalid URL None: empty"),
        ("-oProxyCommand=touch", OPTION_OR_HELPER),
        ("  -oProxyCommand=touch", OPTION_OR_HELPER),  # leading blanks do not hide an option
        ("ext::sh -c touch% /tmp/x", OPTION_OR_HELPER),
        ("fd::17/x", OPTION_OR_HELPER),
        ("https://github.com/a b", "contains spaces, control or non-ASCII characters"),
        ("https://-evil.example/x.git", "missing or malformed host"),
        ("https://.evil.example/x.git", "missing or malformed host"),
        ("https://user:secret@github.com/a/b.git", "credentials in a URL would be committed"),
    ],
)
def test_refusal_names_its_reason(url, reason: str) -> None:
    with pytest.raises(RegistryError) as refused:
        check_url(url)
    assert reason in str(refused.value)


def test_only_https_message_hints_at_local_mirrors_only_when_they_are_not_allowed() -> None:
    hint = " (local mirrors need --mirror or --allow-local)"
    with pytest.raises(RegistryError) as plain:
        check_url("ssh://example.org/x.git")
    assert str(plain.value) == f"refused URL 'ssh://example.org/x.git': only https:// sources are allowed{hint}"
    with pytest.raises(RegistryError) as local:
        check_url("ssh://example.org/x.git", allow_local=True)
    assert str(local.value) == "refused URL 'ssh://example.org/x.git': only https:// sources are allowed"


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/owner/repo::name.git",  # "::" after the first slash is path, not a helper
        "https://github.com/owner/re-po.git",
    ],
)
def test_https_urls_that_only_look_odd_are_accepted(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("images\\a.png", "images/a.png"),  # a metadata file written on Windows
        ("images\\sub\\.\\a.png", "images/sub/a.png"),
        ("./images/./a.png", "images/a.png"),
    ],
)
def test_safe_relative_normalises_windows_and_dot_segments(tmp_path: Path, relative: str, expected: str) -> None:
    assert safe_relative(tmp_path, relative) == PurePosixPath(expected)


CHECK_IN_CHILD = """
import sys
from pathlib import Path
from covid19_images.core.paths import SafePaths, UnsafePath
checker = SafePaths(Path(sys.argv[1]))
for name in sys.argv[2:]:
    try:
        checker.check(name)
        print("accepted", name)
    except UnsafePath:
        print("refused", name)
"""


def test_a_link_inside_a_folder_that_cannot_be_listed_is_still_resolved(tmp_path: Path) -> None:
    """A folder with search but no read permission hides its links from the walk, not from ``open``."""
    import os
    import shutil
    import subprocess
    import sys

    import covid19_images

    prefix: list[str] = []
    if os.geteuid() == 0:  # root lists anything: drop the capabilities that let it, as setpriv does
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv (util-linux) is absent: cannot make a folder unlistable")
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    base, outside = tmp_path / "src", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    # two unlistable folders: whichever the walk meets first, the other is still to be walked
    for folder in ("hidden1", "hidden2"):
        (base / folder).mkdir(parents=True)
        (base / folder / "ok.png").write_bytes(b"x")
        (base / folder / "link").symlink_to(outside)
    names = ["hidden1/link/secret.png", "hidden2/link/secret.png", "hidden1/ok.png", "hidden2/ok.png"]
    src = str(Path(covid19_images.__file__).parents[1])
    listed = SafePaths(base)  # listable here: the walk finds both links (and mutmut sees this test reach it)
    assert {"hidden1/link", "hidden2/link"} <= listed.links
    with pytest.raises(UnsafePath):
        listed.check("hidden1/link/secret.png")
    try:
        for folder in ("hidden1", "hidden2"):
            (base / folder).chmod(0o311)  # write and search, no read: scandir fails, paths through it open
        done = subprocess.run(
            [*prefix, sys.executable, "-c", CHECK_IN_CHILD, str(base), *names],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": src},
        )
    finally:
        for folder in ("hidden1", "hidden2"):
            (base / folder).chmod(0o755)
    assert done.returncode == 0, done.stderr
    answers = dict(line.split(" ", 1)[::-1] for line in done.stdout.splitlines())
    assert answers == {
        "hidden1/link/secret.png": "refused",
        "hidden2/link/secret.png": "refused",
        "hidden1/ok.png": "accepted",
        "hidden2/ok.png": "accepted",
    }
