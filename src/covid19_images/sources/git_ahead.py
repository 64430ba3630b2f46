"""What sync asks git first about every source, asked for all sources at once.

Why: for a source whose upstream did not move, :func:`covid19_images.sources.git.update_source`
costs two git processes, the status of its checkout and the fetch of its branch, and a sync
ran them source after source: about 1 s of a one-image sync with 14 git sources, most of it
waiting. Both touch only the source's own repository (its index and its remote-tracking ref,
never the superproject or the working tree), so they run here concurrently, before the
one-by-one moves; ``update_source`` then uses the answers instead of asking again.

A source is asked ahead only when nothing could change the answer before its turn: it is
checked out, its URL passes the transport policy, its ``origin`` already is that URL, and no
interrupted move of it waits to be finished. Any other source is asked in its turn, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import git

from covid19_images.core.workers import default_workers
from covid19_images.sources.git_state import checkout_status, is_initialised, open_repo, origin_url
from covid19_images.sources.registry import RegistryError, SourceSpec, check_url
from covid19_images.sources.transport import local_allowed

#: git processes at once: they mostly wait on each other's I/O, so a few more than the cores
_MAX_AT_ONCE = 8


@dataclass(frozen=True)
class Asked:
    """One source's answers: its checkout's state and the fetch's failure, if it failed."""

    state: str
    fetch_error: git.GitCommandError | None = None


def fetch_upstream(sub: git.Repo, branch: str) -> None:
    """Fetch ``branch`` of ``origin`` into ``refs/remotes/origin/<branch>`` (no tags)."""
    sub.git.fetch("--no-tags", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}")


def ask_ahead(
    root: Path, specs: Iterable[SourceSpec], env: Mapping[str, str], moving: Iterable[str] = ()
) -> dict[str, Asked]:
    """Status and fetch of every source that can be asked ahead (module docstring), concurrently.

    ``moving`` names the sources with an interrupted move announced: they are left to their turn.
    """
    allow_local = local_allowed(env)
    waiting = set(moving)

    def ask(spec: SourceSpec) -> Asked | None:
        if spec.name in waiting or not is_initialised(root, spec.path):
            return None
        try:
            check_url(spec.url, allow_local=allow_local)
        except RegistryError:
            return None
        sub = open_repo(root / spec.path, env)
        if origin_url(sub) != spec.url:
            return None
        state = checkout_status(root / spec.path)
        try:
            fetch_upstream(sub, spec.branch)
        except git.GitCommandError as err:
            return Asked(state, err)
        return Asked(state)

    specs = list(specs)
    if not specs:
        return {}
    with ThreadPoolExecutor(max_workers=min(_MAX_AT_ONCE, max(2, 2 * default_workers()), len(specs))) as pool:
        answers = dict(zip((s.name for s in specs), pool.map(ask, specs), strict=True))
    return {name: answer for name, answer in answers.items() if answer is not None}
