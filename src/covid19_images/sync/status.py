"""What ``covid19-images status`` reports for each source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from covid19_images.manifest.build import read_manifest
from covid19_images.sources.git import commits_ahead, gitlink, head_commit, is_initialised
from covid19_images.sources.registry import load_registry


@dataclass
class SourceStatus:
    """One line of ``covid19-images status``: pins and checkouts of a source, and its manifest rows."""

    name: str
    initialised: bool
    pinned: str | None
    checked_out: str | None
    ahead: int | None
    images: int


def source_status(root: Path) -> list[SourceStatus]:
    """The status of every registered source under ``root``, in registry order (no network access)."""
    registry = load_registry(root)
    repo = git.Repo(root)
    manifest = read_manifest(root, missing_record_ok=True)  # counts only
    counts = manifest["source"].value_counts().to_dict() if manifest is not None else {}
    rows = []
    for spec in registry.values():
        initialised = is_initialised(root, spec.path)
        rows.append(
            SourceStatus(
                name=spec.name,
                initialised=initialised,
                pinned=gitlink(repo, spec.path),
                checked_out=head_commit(root / spec.path) if initialised else None,
                ahead=commits_ahead(root / spec.path, spec.branch) if initialised else None,
                images=int(counts.get(spec.name, 0)),
            )
        )
    return rows
