"""Pin a portal source: list a version's files, download them, hash them, write the new lock.

This is ``sync --update-portal NAME``: what moving a submodule to its upstream tip is for a
git source. Files are checked against the portal's own hash where it publishes one (Zenodo
and figshare md5) while they download; our sha256 is computed on the way. The lock is written
only when every file arrived, so a failed update leaves the old lock (and the fetched folder)
as they were.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import requests

from covid19_images.sources.portal.fetch import downloads_of
from covid19_images.sources.portal.http import PortalError, download, file_hashes, make_session
from covid19_images.sources.portal.lock import LockEntry, PortalLock, read_lock, write_lock
from covid19_images.sources.portal.mirror import UrlRewriter
from covid19_images.sources.portal.portals import RemoteFile, auth_for, listing, newest_version
from covid19_images.sources.registry import SourceSpec


def pinned_version(root: Path, spec: SourceSpec) -> str:
    """The version the root's lock pins (the catalog's ``version:`` when there is no lock yet)."""
    lock = read_lock(root, spec.name)
    return lock.version if lock is not None and lock.version else spec.version


def check_portal(root: Path, spec: SourceSpec, session=None, rewriter=None) -> str:
    """One line: the pinned version and the portal's newest one."""
    session = session or make_session()
    rewriter = rewriter or UrlRewriter.from_git(root)
    pinned = pinned_version(root, spec) or "none"
    newest = newest_version(spec, session, rewriter)
    if newest is None:
        return f"{spec.name}: pinned {pinned}; {spec.portal} publishes no versions (update-portal re-reads the files)"
    if newest == pinned:
        return f"{spec.name}: pinned {pinned} is the newest"
    return f"{spec.name}: pinned {pinned}, newest {newest}: `covid19-images sync --update-portal {spec.name}`"


def _get(
    root: Path, spec: SourceSpec, item: RemoteFile, session, rewriter: UrlRewriter, from_dir: Path | None, progress
) -> LockEntry:
    final = downloads_of(root, spec.name) / item.path
    part = final.with_name(final.name + ".part")
    if from_dir is not None:
        found = next((p for p in (from_dir / item.path, from_dir / Path(item.path).name) if p.is_file()), None)
        if found is None:
            raise PortalError(f"{spec.name}: {item.path} is not in {from_dir}")
        part.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, part)
    elif item.locator.startswith("manual:"):
        raise PortalError(f"{spec.name}: a manual source is pinned from files you downloaded: add --from DIR")
    else:
        auth, hint = auth_for(spec)
        url = rewriter.rewrite(item.locator)
        got = download(
            session, url, part, what=f"{spec.name}: {item.path}", size=item.size, terms_url=spec.terms_url,
            auth=auth, hint=hint, progress=progress,
        )  # fmt: skip
    if from_dir is not None:
        got = file_hashes(part)
    if item.portal_hash.startswith("md5:") and item.portal_hash != f"md5:{got.md5}":
        part.unlink()
        raise PortalError(
            f"{spec.name}: {item.path} does not match the portal's own checksum {item.portal_hash}; refused"
        )
    if item.size is not None and got.size != item.size:
        part.unlink()
        raise PortalError(f"{spec.name}: {item.path} has {got.size} bytes, the portal lists {item.size}; refused")
    os.replace(part, final)
    return LockEntry(item.path, got.size, item.portal_hash, got.sha256, item.locator)


def update_lock(
    root: Path,
    spec: SourceSpec,
    *,
    version: str = "",
    from_dir: Path | None = None,
    session: requests.Session | None = None,
    rewriter: UrlRewriter | None = None,
    progress: bool = True,
) -> tuple[PortalLock | None, PortalLock]:
    """Download ``version`` (default: the newest, else the pinned one) and write its lock; ``(old, new)``."""
    session = session or make_session()
    rewriter = rewriter or UrlRewriter.from_git(root)
    old = read_lock(root, spec.name)
    if not version and from_dir is None:
        version = newest_version(spec, session, rewriter) or ""
    version, files = listing(spec, session, rewriter, version or pinned_version(root, spec))
    if not files:
        raise PortalError(f"{spec.name}: the portal lists no files for {spec.dataset} version {version or '-'}")
    entries = tuple(_get(root, spec, item, session, rewriter, from_dir, progress) for item in files)
    new = PortalLock(spec.name, spec.portal, spec.dataset, version, entries)
    write_lock(root, new)
    return old, new
