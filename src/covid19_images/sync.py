"""``sync``: move each submodule to its upstream tip, rebuild the manifest, say what changed.

One source failing (unreachable, rewritten, locally modified) never stops the others,
and the manifest is only replaced once the new one is completely built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import filelock
import git

from .gitops import SourceSyncError, SourceUpdate, git_environment, open_repo, update_source
from .manifest import (
    MANIFEST_FILE,
    PROBLEMS_FILE,
    BuildResult,
    SourceChange,
    build_manifest,
    diff_manifests,
    read_manifest,
    write_manifest,
)
from .registry import load_registry

LOCK_NAME = "covid19-images-sync.lock"  # kept in the root's git dir: never shows up as an untracked file
PID_NAME = "covid19-images-sync.pid"


class SyncBusy(RuntimeError):
    """Another sync holds the lock on this root."""


@dataclass
class SyncReport:
    updates: list[SourceUpdate] = field(default_factory=list)
    changes: dict[str, SourceChange] = field(default_factory=dict)
    build: BuildResult | None = None
    committed: str | None = None

    @property
    def failed(self) -> list[SourceUpdate]:
        return [u for u in self.updates if u.status in ("failed", "refused")]

    def summary(self) -> str:
        """One line per source: ``old→new commit, +N images, −M images, K relabelled``."""
        lines: list[str] = []
        names = list(dict.fromkeys([u.name for u in self.updates] + sorted(self.changes)))
        updates = {u.name: u for u in self.updates}
        for name in names:
            update = updates.get(name)
            change = self.changes.get(name, SourceChange(name))
            old = (update.old or "none")[:12] if update else "-"
            new = (update.new or "none")[:12] if update else "-"
            status = (
                f" [{update.status}: {update.message}]" if update and update.status in ("refused", "failed") else ""
            )
            moved = f", {len(change.moved)} changed split" if change.moved else ""
            lines.append(
                f"{name}: {old}→{new}, +{len(change.added)} images, −{len(change.removed)} images, "
                f"{len(change.relabelled)} relabelled{moved}{status}"
            )
        return "\n".join(lines)


def _acquire(root: Path, wait: bool) -> filelock.BaseFileLock:
    git_dir = Path(git.Repo(root).git_dir)
    lock_path, pid_path = git_dir / LOCK_NAME, git_dir / PID_NAME
    lock = filelock.FileLock(str(lock_path), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except filelock.Timeout:
        pid = pid_path.read_text().strip() if pid_path.is_file() else "unknown"
        raise SyncBusy(f"sync already running (pid {pid}) on {root}; wait for it or use --wait") from None
    pid_path.write_text(str(os.getpid()))
    return lock


def _git_identity(env: dict[str, str], repo: git.Repo) -> dict[str, str]:
    try:
        repo.git.config("user.email")
        return env
    except git.GitCommandError:
        return {
            **env,
            "GIT_AUTHOR_NAME": env.get("GIT_AUTHOR_NAME", "covid19-images sync"),
            "GIT_AUTHOR_EMAIL": env.get("GIT_AUTHOR_EMAIL", "sync@covid19-images.invalid"),
            "GIT_COMMITTER_NAME": env.get("GIT_COMMITTER_NAME", "covid19-images sync"),
            "GIT_COMMITTER_EMAIL": env.get("GIT_COMMITTER_EMAIL", "sync@covid19-images.invalid"),
        }


def sync(
    root: Path,
    sources: Sequence[str] = (),
    *,
    offline: bool = False,
    allow_rewrite: bool = False,
    commit: bool = False,
    mirror: Path | None = None,
    allow_local: bool = False,
    wait: bool = False,
    progress: bool = True,
) -> SyncReport:
    """Update the selected sources (all by default) and rebuild the manifest under ``root``."""
    root = Path(root).resolve()
    registry = load_registry(root)
    unknown = [s for s in sources if s not in registry]
    if unknown:
        raise KeyError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(registry)}")
    selected = [registry[s] for s in (sources or registry)]
    env = git_environment(allow_local=allow_local, mirror=mirror)
    report = SyncReport()
    lock = _acquire(root, wait)
    try:
        repo = open_repo(root, env)
        if not offline:
            for spec in selected:
                try:
                    report.updates.append(update_source(repo, spec, env, allow_rewrite=allow_rewrite))
                except SourceSyncError as err:
                    report.updates.append(SourceUpdate(spec.name, None, None, "refused", str(err)))
                except git.GitCommandError as err:
                    report.updates.append(SourceUpdate(spec.name, None, None, "failed", str(err).strip()))
        previous = read_manifest(root)
        report.build = build_manifest(root, registry, previous, progress=progress)
        report.changes = diff_manifests(previous, report.build.manifest)
        write_manifest(root, report.build)
        if commit:
            report.committed = _commit(repo, root, env, report)
    finally:
        (Path(git.Repo(root).git_dir) / PID_NAME).unlink(missing_ok=True)
        lock.release()
    return report


def _commit(repo: git.Repo, root: Path, env: dict[str, str], report: SyncReport) -> str | None:
    paths = [MANIFEST_FILE, PROBLEMS_FILE, ".gitmodules"]
    paths += [f"datasets/{u.name}" for u in report.updates if u.status in ("added", "updated", "unchanged")]
    paths = [p for p in paths if (root / p).exists()]
    repo.git.add("--", *paths)
    if not repo.git.diff("--cached", "--name-only", "--", *paths).strip():
        return None
    message = "sync: update upstream datasets\n\n" + report.summary() + "\n"
    with repo.git.custom_environment(**_git_identity(env, repo)):
        repo.git.commit("--quiet", "-m", message, "--", *paths)
    return repo.head.commit.hexsha
