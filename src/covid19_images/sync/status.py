"""What ``covid19-images status`` reports for each source.

Without ``fetch`` nothing touches the network, so "ahead" is as of the last fetch (a sync or
``status --fetch``), and says so; with ``fetch`` each checked-out source fetches its branch first,
in the same locked-down git environment as ``sync``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from covid19_images.manifest.build import read_manifest
from covid19_images.sources.git import commits_ahead, gitlink, head_commit, is_initialised, open_repo
from covid19_images.sources.portal.state import presence
from covid19_images.sources.registry import load_registry
from covid19_images.sources.transport import git_environment


@dataclass
class SourceStatus:
    """One line of ``covid19-images status``: pins and checkouts of a source, and its manifest rows."""

    name: str
    initialised: bool
    pinned: str | None
    checked_out: str | None
    ahead: int | None
    images: int
    fetch_error: str | None = None


def _fetch(directory: Path, url: str, branch: str, env: dict[str, str]) -> str | None:
    """Fetch the upstream branch into ``refs/remotes/origin/<branch>``; the error's last line, or None."""
    try:
        sub = open_repo(directory, env)
        sub.git.fetch("--no-tags", url, f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
    except git.GitError as err:
        lines = [line for line in str(err).splitlines() if line.strip()]
        return lines[-1].strip(" '") if lines else type(err).__name__
    return None


def source_status(
    root: Path, *, fetch: bool = False, mirror: Path | None = None, allow_local: bool = False
) -> list[SourceStatus]:
    """The status of every registered source under ``root``, in registry order.

    ``fetch`` asks each checked-out source's upstream first (``mirror`` / ``allow_local`` as for sync).
    """
    registry = load_registry(root)
    repo = git.Repo(root)
    manifest = read_manifest(root, missing_record_ok=True)  # counts only
    counts = manifest["source"].value_counts().to_dict() if manifest is not None else {}
    env = git_environment(allow_local=allow_local, mirror=mirror) if fetch else {}
    rows = []
    for spec in registry.values():
        if spec.is_portal:  # pinned by its lock; "checked out" = fetched and matching it
            fetched = presence(root, spec.name)
            digest = fetched.digest or None
            rows.append(
                SourceStatus(
                    spec.name, fetched.complete, digest, digest if fetched.complete else None, None,
                    int(counts.get(spec.name, 0)),
                )
            )  # fmt: skip
            continue
        initialised = is_initialised(root, spec.path)
        error = _fetch(root / spec.path, spec.url, spec.branch, env) if fetch and initialised else None
        rows.append(
            SourceStatus(
                name=spec.name,
                initialised=initialised,
                pinned=gitlink(repo, spec.path),
                checked_out=head_commit(root / spec.path) if initialised else None,
                ahead=commits_ahead(root / spec.path, spec.branch) if initialised and not error else None,
                images=int(counts.get(spec.name, 0)),
                fetch_error=error,
            )
        )
    return rows


def next_steps(rows: list[SourceStatus], root: Path, *, fetched: bool) -> list[str]:
    """What the table means and what to run next: a bare clone gets the way to data, not 14 blank rows."""
    lines = []
    if rows and not any(row.initialised for row in rows):
        lines.append(
            f"No source is checked out in {root}. To try the package offline: `make demo` (a demo root from the "
            "samples, which this clone then uses). For the real data (network): `git submodule update --init "
            "--recursive`, then `covid19-images sync`."
        )
    elif not fetched:
        lines.append(
            "ahead: commits the upstream branch had beyond the checkout at the last fetch (sync or status --fetch); "
            "`covid19-images status --fetch` asks the upstreams now."
        )
    for row in rows:
        if row.fetch_error:
            lines.append(f"{row.name}: cannot fetch: {row.fetch_error}")
    return lines
