"""``sync``: move each submodule to its upstream tip, rebuild the manifest, say what changed.

One source failing (unreachable, rewritten, locally modified) never stops the others,
and the manifest is only replaced once the new one is completely built. Syncs are meant to
run unattended (cron mirrors), so a sync killed at any point leaves the last good manifest
in place, and the next one cleans up after it: leftover temporary files, git lock files of
the dead run, and a submodule it had moved but not yet pinned.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import git

from covid19_images.core.collections_pause import fewer_collections, loaded_for_the_build
from covid19_images.core.failpoints import checkpoint
from covid19_images.imaging.budget import budget_settings
from covid19_images.manifest.diff import SourceChange
from covid19_images.manifest.integrity import record_path
from covid19_images.manifest.result import BuildResult
from covid19_images.manifest.source_cache import cache_dir_of
from covid19_images.manifest.unchanged import (
    ANNOTATIONS_FILE,
    MANIFEST_FILE,
    PROBLEMS_FILE,
    REVIEWS_FILE,
    reuse_unchanged,
)
from covid19_images.sources.git import (
    SourceSyncError,
    SourceUpdate,
    check_gitmodules,
    gitlink,
    move_announced,
    open_repo,
    registered_submodules,
    update_source,
)
from covid19_images.sources.git_ahead import ask_ahead
from covid19_images.sources.git_state import gitlinks
from covid19_images.sources.portal.lock import lock_path
from covid19_images.sources.portal.state import presence
from covid19_images.sources.registry import REGISTRY_FILE, load_registry
from covid19_images.sources.transport import git_environment
from covid19_images.sync.locking import (  # noqa: F401 - LOCK_NAME, PID_NAME, SyncBusy: re-exported for callers
    LOCK_NAME,
    PID_NAME,
    SyncBusy,
    acquire,
    lock_paths,
    recover,
)
from covid19_images.sync.record import SYNC_RECORD_FILE, write_sync_record

if TYPE_CHECKING:  # pragma: no cover - a sync with nothing changed imports no pandas (manifest.unchanged)
    import pandas as pd

    from covid19_images.manifest.splits import SplitMove
    from covid19_images.sync.shrink import Shrink


class UnknownSourceError(LookupError):
    """A source named on the command line (or by a caller) is not in the registry.

    A user error with a one-line answer (the known names), so the CLI catches exactly this
    and nothing broader: a ``KeyError`` from a bug inside sync must keep its traceback.
    """


@dataclass
class SyncReport:
    """What one :func:`sync` did: per-source updates, manifest changes, the build, notes."""

    updates: list[SourceUpdate] = field(default_factory=list)
    changes: dict[str, SourceChange] = field(default_factory=dict)
    build: BuildResult | None = None
    committed: str | None = None
    notes: list[str] = field(default_factory=list)
    split_moves: list[SplitMove] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceUpdate]:
        """Sources that were refused or failed (the CLI exits 1 when there are any)."""
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
        if self.split_moves:
            from covid19_images.manifest.splits import format_split_moves

            lines.append(format_split_moves(self.split_moves))
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _pin(repo: git.Repo, path: str) -> str | None:
    """The gitlink a refused source keeps (shown as ``old→old`` in the summary: nothing moved)."""
    try:
        return gitlink(repo, path)
    except git.GitCommandError:
        return None


def _previous_manifest(root: Path, notes: list[str]) -> pd.DataFrame | None:
    """The current manifest, or None if there is none or it is unreadable (kept aside, not lost)."""
    import pandas as pd

    from covid19_images.manifest.build import read_manifest

    if not record_path(root / MANIFEST_FILE).is_file() and (root / MANIFEST_FILE).is_file():
        notes.append(
            f"{MANIFEST_FILE} had no integrity record: used it as the previous manifest after the checks its "
            "text allows, and recorded the manifest written now"
        )
    try:
        return read_manifest(root, missing_record_ok=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        aside = (root / MANIFEST_FILE).with_name(f"manifest.unreadable-{time.strftime('%Y%m%dT%H%M%S')}.csv")
        shutil.copy2(root / MANIFEST_FILE, aside)
        notes.append(
            f"{MANIFEST_FILE} was unreadable ({type(err).__name__}: {str(err)[:200]}); kept it as "
            f"{aside.relative_to(root).as_posix()} and rebuilt the manifest from the checkouts"
        )
        return None


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
    allow_shrink: bool = False,
    rebuild: bool = False,
) -> SyncReport:
    """Update the selected sources (all by default) and rebuild the manifest under ``root``.

    Args:
        root: the project root (a git repository holding ``sources.yaml``).
        sources: registry names to update; empty means all. The manifest is always rebuilt
            for every source.
        offline: do not fetch; rebuild from the current checkouts.
        allow_rewrite: accept an upstream whose history no longer holds the pinned commit.
        commit: commit the moved gitlinks, ``.gitmodules`` and the manifest files.
        mirror: a local mirror root (``<owner>/<repo>.git``) that ``https://github.com/`` is rewritten to.
        allow_local: allow local-path remotes (the user's own ``insteadOf`` rules).
        wait: wait for a running sync on the same root instead of raising :class:`SyncBusy`.
        progress: show progress bars.
        allow_shrink: accept a source losing most of its rows (metadata deleted or unreadable upstream).
        rebuild: re-read and re-probe every source and search all duplicates again, ignoring every cache
            (only what changed is re-read otherwise; see :mod:`covid19_images.manifest.build`).

    Raises:
        UnknownSourceError: a name in ``sources`` is not in the registry.
        SyncBusy: another sync holds the root's lock and ``wait`` is false.
        InvalidSetting: a ``COVID19_IMAGES_MAX_*`` budget variable is not a positive whole number.
    """
    root = Path(root).resolve()
    budget_settings()  # InvalidSetting before anything is read: a bad value would drop whole sources
    registry = load_registry(root)
    unknown = [s for s in sources if s not in registry]
    if unknown:
        raise UnknownSourceError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(registry)}")
    selected = [registry[s] for s in (sources or registry)]
    env = git_environment(allow_local=allow_local, mirror=mirror)
    report = SyncReport()
    lock, stale = acquire(root, wait)
    try:
        repo = open_repo(root, env)
        report.notes += recover(root, repo, stale)
        keep: set[str] = set()
        if not offline:
            refusals = check_gitmodules(repo, registry)
            for name, reason in refusals:
                report.updates.append(SourceUpdate(name, None, None, "refused", reason))
            refused_names = {name for name, _ in refusals}
            submodules, pins = registered_submodules(repo), gitlinks(repo)
            git_sources = [s for s in selected if not s.is_portal and s.name not in refused_names]
            moving = [s.name for s in git_sources if move_announced(repo, s.name)]
            asked = ask_ahead(root, git_sources, env, moving)  # status + fetch of every source, at once
            for spec in selected:
                if spec.is_portal:
                    continue  # pinned by its lock, not by a gitlink: see _portal_updates
                if spec.name in refused_names:
                    keep.add(spec.name)
                    continue
                try:
                    update = update_source(
                        repo,
                        spec,
                        env,
                        allow_rewrite=allow_rewrite,
                        submodules=submodules,
                        pins=pins,
                        asked=asked.get(spec.name),
                    )
                    report.updates.append(update)
                    if update.status == "added" or update.notes:
                        submodules, pins = registered_submodules(repo), gitlinks(repo)
                    report.notes += update.notes
                except SourceSyncError as err:
                    pinned = _pin(repo, spec.path)
                    report.updates.append(SourceUpdate(spec.name, pinned, pinned, "refused", str(err)))
                    if err.keep_manifest_rows:
                        keep.add(spec.name)
                except git.GitCommandError as err:
                    pinned = _pin(repo, spec.path)
                    report.updates.append(SourceUpdate(spec.name, pinned, pinned, "failed", str(err).strip()))
                    keep.add(spec.name)
                checkpoint("sync.source-done")
        clean = {u.name: u.clean for u in report.updates if u.clean is not None}
        cache_dir = cache_dir_of(root)
        unchanged = None if rebuild else reuse_unchanged(root, registry, keep, clean, cache_dir)
        if unchanged is not None:
            report.build = unchanged
            old_commits = unchanged.cache.build.get("row_commits", {}) if unchanged.cache else {}
            portal = [s for s in selected if s.is_portal]
            _portal_updates(report, root, portal, {n: old_commits.get(n) or None for n in registry}, offline)
        else:
            with fewer_collections():
                _build(
                    root, registry, selected, report, keep, clean, cache_dir, offline, progress, allow_shrink, rebuild
                )
        checkpoint("sync.built")
        if not report.build.files_current:
            from covid19_images.manifest.build import write_manifest

            with fewer_collections():
                write_manifest(root, report.build, cache_dir)
        write_sync_record(root, report)
        checkpoint("sync.written")
        if commit:
            report.committed = _commit(repo, root, env, report, selected)
            checkpoint("sync.committed")
    finally:
        checkpoint("sync.unlocking")
        lock_paths(root)[1].unlink(missing_ok=True)
        lock.release()
    return report


def _build(
    root, registry, selected, report: SyncReport, keep, clean, cache_dir, offline, progress, allow_shrink, rebuild
):
    """The build when something changed: read the previous manifest, build, refuse shrinks, diff."""
    # pandas, SciPy and the build's modules load here (a no-change sync needs none of them): about
    # 100,000 objects that live as long as the process, so no collection walks them as they load
    # or while the build runs (core.collections_pause)
    with loaded_for_the_build():
        from covid19_images.manifest.diff import diff_manifests
        from covid19_images.manifest.splits import explain_split_moves
        from covid19_images.sync.shrink import find_shrinks

    previous = _previous_manifest(root, report.notes)
    _portal_updates(report, root, [s for s in selected if s.is_portal], _old_commits(previous), offline)
    options = {"progress": progress, "keep": keep, "cache_dir": cache_dir, "rebuild": rebuild, "clean": clean}
    report.build = build_manifest(root, registry, previous, **options)
    shrinks = [] if allow_shrink else find_shrinks(previous, report.build, keep)
    if shrinks:
        _refuse_shrinks(root, registry, report, previous, shrinks, keep)
        report.build = build_manifest(root, registry, previous, **options)
    if not report.build.unchanged:
        report.changes = diff_manifests(previous, report.build.manifest)
        report.split_moves = explain_split_moves(previous, report.build.manifest)


def build_manifest(*args, **kwargs) -> BuildResult:
    """:func:`covid19_images.manifest.build.build_manifest`, imported (with pandas) only when something changed."""
    from covid19_images.manifest.build import build_manifest as build

    return build(*args, **kwargs)


def _old_commits(previous: pd.DataFrame | None) -> dict[str, str | None]:
    """Source -> the first commit its rows in the previous manifest name (a portal source's lock digest)."""
    if previous is None or previous.empty:
        return {}
    rows = previous[previous["source_commit"] != ""]
    first = rows.groupby("source")["source_commit"].min()  # one grouped pass, not a Python min per source
    return {str(name): str(commit) for name, commit in first.items()}


def _portal_updates(
    report: SyncReport, root: Path, specs: list, old_commits: dict[str, str | None], offline: bool
) -> None:
    """A portal source's "commit" is its lock's digest: old (the manifest's) -> new (the lock on disk).

    Sync itself never downloads (``fetch`` and ``sync --update-portal`` do); it reports what
    the lock says and, in a note, what to run when the content is not here (not pinned, not fetched, damaged).
    """
    for spec in specs:
        old = old_commits.get(spec.name)
        fetched = presence(root, spec.name)
        new = fetched.digest or None
        if offline and old == new:
            continue
        status = "added" if old is None and new else "updated" if old != new else "unchanged"
        report.updates.append(SourceUpdate(spec.name, old, new, status, fetched.hint(spec.name)))
        report.notes += [f"{spec.name}: {fetched.hint(spec.name)}"] if not fetched.complete else []


def _refuse_shrinks(root, registry, report: SyncReport, previous, shrinks: list[Shrink], keep: set[str]) -> None:
    """Mark each shrinking source refused, put its checkout back, and keep its rows (see ``sync.shrink``)."""
    from covid19_images.sync.shrink import restore_checkout

    updates = {u.name: u for u in report.updates}
    for item in shrinks:
        update = updates.get(item.source)
        note = restore_checkout(root, registry[item.source], update, previous)
        if note:
            report.notes.append(note)
        keep.add(item.source)
        if update is None:
            update = SourceUpdate(item.source, None, None, "refused")
            report.updates.append(update)
        update.status, update.message = "refused", item.message()
        update.new = update.old


def _commit(repo: git.Repo, root: Path, env: dict[str, str], report: SyncReport, selected: list) -> str | None:
    """Commit what this sync built, the registry, and the pins (gitlinks, locks) of every selected source not
    refused or failed: also those ``--offline`` did not touch (a new root's, as ``make demo``'s)."""
    # a .gitmodules that sync refused must not be laundered into a commit
    tampered = any(u.status == "refused" and u.message.startswith(".gitmodules") for u in report.updates)
    record = record_path(Path(MANIFEST_FILE)).as_posix()
    annotations_record = record_path(Path(ANNOTATIONS_FILE)).as_posix()
    # the reviewed duplicate pairs the groups were built with belong to the same commit
    paths = [MANIFEST_FILE, record, PROBLEMS_FILE, ANNOTATIONS_FILE, annotations_record, SYNC_RECORD_FILE, REVIEWS_FILE]
    paths += [] if tampered else [".gitmodules", REGISTRY_FILE]
    held_back = {u.name for u in report.updates if u.status not in ("added", "updated", "unchanged")}
    pinned = [spec for spec in selected if spec.name not in held_back]
    paths += [lock_path(Path("."), spec.name).as_posix() if spec.is_portal else spec.path for spec in pinned]
    paths = [p for p in paths if (root / p).exists()]
    repo.git.add("--", *paths)
    checkpoint("commit.staged")
    if not repo.git.diff("--cached", "--name-only", "--", *paths).strip():
        return None
    message = "sync: update upstream datasets\n\n" + report.summary() + "\n"
    with repo.git.custom_environment(**_git_identity(env, repo)):
        repo.git.commit("--quiet", "-m", message, "--", *paths)
    return repo.head.commit.hexsha
