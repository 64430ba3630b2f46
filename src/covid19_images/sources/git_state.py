"""What the superproject and a checkout hold now, each in one git call (sync asks once per source)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import git

from covid19_images.sources.registry import DATASETS_DIR


def gitlinks(repo: git.Repo) -> dict[str, str]:
    """Every gitlink the superproject's index pins: ``path -> commit``, in one ``git ls-files`` call."""
    pins: dict[str, str] = {}
    for line in repo.git.ls_files("-s", "-z", "--", DATASETS_DIR).split("\0"):
        if not line:
            continue
        meta, name = line.split("\t", 1)
        mode, sha = meta.split()[:2]
        if mode == "160000":
            pins[name] = sha
    return pins


def checkout_status(directory: Path) -> str:
    """``clean``, ``ignored`` (only git-ignored files beside the commit) or ``dirty``, in one ``git status``.

    ``clean`` means the working tree is exactly its commit: nothing modified, untracked or
    ignored (a parser lists every file, ignored ones too). git answers from its index's stat
    cache: an unchanged tracked file costs one ``lstat``, never a read.
    """
    try:
        out = git.Repo(directory).git.status("--porcelain", "-z", "--untracked-files=all", "--ignored")
    except (git.GitError, ValueError):
        return "dirty"
    if not out:
        return "clean"
    entries = [entry for entry in out.split("\0") if entry]
    return "ignored" if all(entry.startswith("!! ") for entry in entries) else "dirty"


def open_repo(path: Path, env: Mapping[str, str]) -> git.Repo:
    """The repository at ``path``, its git processes run in ``env`` (the transport policy)."""
    repo = git.Repo(path)
    repo.git.update_environment(**env)
    return repo


def is_initialised(root: Path, path: str) -> bool:
    return (root / path / ".git").exists()


def origin_url(repo: git.Repo) -> str | None:
    """The URL of ``repo``'s ``origin`` remote, or None if it has none."""
    try:
        return repo.remote("origin").url
    except (ValueError, git.GitError):
        return None
