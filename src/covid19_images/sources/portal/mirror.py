"""One mirror mechanism: every portal URL goes through git's own ``url.<base>.insteadOf``.

``git config url.http://127.0.0.1:8000/zenodo/.insteadOf https://zenodo.org/`` points
``fetch`` at a local mirror exactly as it points a submodule's clone, because the rules are
read from git itself (system, global, the root's own config and ``GIT_CONFIG_*`` of the
environment, through GitPython) and applied with git's rule: the longest matching prefix wins.

A rewritten URL must still be https, or plain http to a loopback address (a mirror on this
machine): a rule cannot send credentials or requests in clear text across a network.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import git

_SUFFIX = ".insteadof"


class MirrorError(ValueError):
    """A URL (after rewriting) that fetch refuses to request."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_fetch_url(url: str) -> None:
    """https anywhere; http only to a loopback address; nothing else."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise MirrorError(f"refused URL {url!r}: fetch requests https://, or http:// on a loopback mirror only")


@dataclass(frozen=True)
class UrlRewriter:
    """``insteadOf`` rules as git holds them: ``(prefix the URL starts with, base it becomes)``."""

    rules: tuple[tuple[str, str], ...] = ()

    def rewrite(self, url: str) -> str:
        """git's rewrite: the longest ``insteadOf`` prefix of ``url`` is replaced by its base."""
        best: tuple[str, str] | None = None
        for prefix, base in self.rules:
            if url.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, base)
        rewritten = url if best is None else best[1] + url[len(best[0]) :]
        check_fetch_url(rewritten)
        return rewritten

    @classmethod
    def from_git(cls, root: Path | None = None) -> UrlRewriter:
        """The rules git applies in ``root`` (or outside any repository when None)."""
        try:
            runner = git.Repo(root).git if root is not None else git.Git()
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            runner = git.Git()
        try:
            out = runner.config("-z", "--get-regexp", r"^url\..*\.insteadof$")
        except git.GitCommandError:
            return cls(())  # exit 1: no rule at all
        rules: list[tuple[str, str]] = []
        for record in out.split("\0"):
            key, _, value = record.partition("\n")
            if key.lower().startswith("url.") and key.lower().endswith(_SUFFIX) and value:
                rules.append((value, key[len("url.") : -len(_SUFFIX)]))
        return cls(tuple(rules))
