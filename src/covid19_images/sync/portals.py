"""Fetch, check and update portal sources for a data root (``fetch``, ``sync --check-portals / --update-portal``).

``--only`` narrows a fetch to the files a selection needs: a split scheme (``covidx:9A``:
every row it lists) or ``column=value`` filters on the manifest (``split=test``,
``label=covid``), read from the committed manifest rows. Each selected row is mapped to the
lock entry whose content holds it (a plain file, the folder an archive unpacks into, a TCIA
series folder; an archive unpacking at the top holds whatever no narrower entry does), and
so are the files its ``extra`` names (masks).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from covid19_images.core.paths import source_relative
from covid19_images.manifest.build import read_manifest
from covid19_images.manifest.split_schemes import resolve_split
from covid19_images.sources.portal.fetch import FetchPlan, FetchResult, fetch_source, plan, require_lock, target_of
from covid19_images.sources.portal.http import PortalError, make_session
from covid19_images.sources.portal.lock import LockEntry, PortalLock
from covid19_images.sources.portal.mirror import UrlRewriter
from covid19_images.sources.portal.update import check_portal, update_lock
from covid19_images.sources.registry import SourceSpec, load_registry


class SelectionError(ValueError):
    """An ``--only`` value that names no scheme or column."""


def select_rows(root: Path, only: Sequence[str]) -> pd.DataFrame:
    """Manifest rows matching every ``--only`` value (a split scheme, or ``column=value``)."""
    manifest = read_manifest(root)
    if manifest is None:
        raise SelectionError("--only needs the committed manifest (manifests/manifest.csv); run `covid19-images sync`")
    keep = pd.Series(True, index=manifest.index)
    for value in only:
        column, sep, wanted = value.partition("=")
        if sep:
            if column not in manifest.columns:
                raise SelectionError(f"--only {value}: no manifest column {column!r}")
            keep &= manifest[column].astype(str) == wanted
            continue
        try:
            keep &= resolve_split(manifest, value, root=root) != ""
        except ValueError as err:
            raise SelectionError(f"--only {value}: {err}") from err
    return manifest[keep]


def _holders(spec: SourceSpec, lock: PortalLock) -> list[tuple[str, LockEntry]]:
    """``(prefix, entry)``, longest prefix first: a file belongs to the first entry whose prefix holds it."""
    out = []
    for entry in lock.entries:
        unpack, where = target_of(spec, entry)
        out.append((f"{where}/" if unpack and where else "" if unpack else where, entry))
    return sorted(out, key=lambda item: -len(item[0]))


def entries_for(spec: SourceSpec, lock: PortalLock, relatives: set[str]) -> set[str]:
    """The lock paths whose content holds the files ``relatives`` (relative to the source folder)."""
    holders = _holders(spec, lock)
    needed: set[str] = set()
    for relative in relatives:
        for prefix, entry in holders:
            if relative == prefix or (prefix.endswith("/") and relative.startswith(prefix)) or prefix == "":
                needed.add(entry.path)
                break
    return needed


def _relatives(rows: pd.DataFrame, name: str) -> set[str]:
    found: set[str] = set()
    for path, extra in zip(rows["path"], rows["extra"], strict=True):
        found.add(source_relative(str(path), name))
        try:
            values = json.loads(extra).values() if extra else ()
        except (ValueError, AttributeError):
            values = ()
        found.update(v for v in values if isinstance(v, str) and "/" in v)
    return found


@dataclass
class FetchOutcome:
    name: str
    plan: FetchPlan | None = None
    result: FetchResult | None = None
    error: str = ""


def fetch(
    root: Path,
    names: Sequence[str] = (),
    *,
    only: Sequence[str] = (),
    from_dir: Path | None = None,
    dry_run: bool = False,
    progress: bool = True,
) -> list[FetchOutcome]:
    """Fetch the named portal sources (all by default); one failing never stops the others."""
    registry = load_registry(root)
    portal = {name: spec for name, spec in registry.items() if spec.is_portal}
    unknown = [n for n in names if n not in portal]
    if unknown:
        raise SelectionError(
            f"not portal sources: {', '.join(unknown)} (portal sources: {', '.join(portal) or 'none'})"
        )
    rows = select_rows(root, only) if only else None
    session, rewriter = make_session(), UrlRewriter.from_git(root)
    outcomes = []
    for name in names or list(portal):
        spec = portal[name]
        outcome = FetchOutcome(name)
        outcomes.append(outcome)
        try:
            wanted = None
            if rows is not None:
                mine = rows[rows["source"] == name]
                wanted = entries_for(spec, require_lock(root, spec), _relatives(mine, name))
            outcome.plan = plan(root, spec, wanted)
            if dry_run or (wanted is not None and not wanted):
                continue
            outcome.result = fetch_source(
                root, spec, wanted=wanted, from_dir=from_dir, progress=progress, session=session, rewriter=rewriter
            )
        except (PortalError, OSError, ValueError) as err:
            outcome.error = str(err)
    return outcomes


def check_portals(root: Path) -> list[str]:
    """One line per portal source: pinned version against the portal's newest."""
    session, rewriter = make_session(), UrlRewriter.from_git(root)
    lines = []
    for spec in load_registry(root).values():
        if spec.is_portal:
            try:
                lines.append(check_portal(root, spec, session, rewriter))
            except PortalError as err:
                lines.append(f"{spec.name}: cannot check: {err}")
    return lines


def update_portal(
    root: Path, name: str, *, version: str = "", from_dir: Path | None = None, progress: bool = True
) -> tuple[PortalLock | None, PortalLock]:
    """Pin ``name`` to ``version`` (default: the newest) and fetch it; the caller rebuilds the manifest."""
    registry = load_registry(root)
    spec = registry.get(name)
    if spec is None or not spec.is_portal:
        raise SelectionError(f"{name} is not a portal source of this root")
    session, rewriter = make_session(), UrlRewriter.from_git(root)
    old, new = update_lock(
        root, spec, version=version, from_dir=from_dir, session=session, rewriter=rewriter, progress=progress
    )
    fetch_source(root, spec, from_dir=from_dir, progress=progress, session=session, rewriter=rewriter)
    return old, new
