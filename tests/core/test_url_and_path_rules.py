"""The exact rule and message behind each refusal of ``check_url`` and ``safe_relative``.

``check_url`` layers its checks (option-like and transport-helper URLs, control characters,
the host, then the scheme), so most hostile URLs would be refused by a later layer if an
earlier one broke. These cases pin which layer answers, by the reason the user is given,
and the URLs each rule must let through.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from covid19_images.core.paths import safe_relative
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
