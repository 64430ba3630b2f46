"""A sync with nothing changed upstream costs nothing: the whole build is recognised as the last one.

Every input of a build has a signature that needs no file of a source read: a source's
cache key (commit, when its checkout is proven clean, + code + registry entry + settings;
:func:`~covid19_images.manifest.source_cache.source_key`), or the reason it was not read
(kept by sync, not checked out, a portal source not fetched). The build that wrote the
manifest records the signatures in registry order, with the code hash and the SHA-256 of
each file it wrote (manifest, problems, annotations and their integrity records) and of the
reviewed pairs it read. When a new sync finds the same signatures and the same files, its
build would be byte for byte the one on disk (tests/sync/test_sync_unchanged.py compares it
with ``sync --rebuild``): duplicate search, splits, the annotation join and the problem list
are all reused, and nothing is read, parsed or written. This module imports no pandas.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path

from covid19_images.core.schema import Problem
from covid19_images.manifest.integrity import record_path
from covid19_images.manifest.io import ANNOTATIONS_FILE, MANIFEST_FILE, PROBLEMS_FILE
from covid19_images.manifest.result import BuildResult
from covid19_images.manifest.source_cache import SourceCache, checkout_is_clean, code_hash, file_sha256, source_key
from covid19_images.sources.git import head_commit
from covid19_images.sources.registry import SourceSpec

#: manifests/reviewed-pairs.csv (``manifest.reviews``, which imports pandas; a test ties the two)
REVIEWS_FILE = "manifests/reviewed-pairs.csv"
#: the files a build writes, whose hashes it records (the manifest's is the cache's own key)
WRITTEN = (
    PROBLEMS_FILE,
    ANNOTATIONS_FILE,
    record_path(Path(ANNOTATIONS_FILE)).as_posix(),
    record_path(Path(MANIFEST_FILE)).as_posix(),
)
#: a signature that never matches: the source's rows depend on files no commit names
UNSETTLED = "unsettled"


def is_checked_out(directory: Path) -> bool:
    return directory.is_dir() and any(p.name != ".git" for p in directory.iterdir())


def input_signature(root: Path, spec: SourceSpec, keep: Collection[str], clean: bool | None = None) -> tuple[str, str]:
    """``(signature, commit)`` of one source as the build will treat it (the same order of tests).

    ``clean`` is what sync already learnt of the checkout (None: ask git here).
    """
    directory = root / spec.path
    if spec.name in keep:
        return "kept:" + source_key(spec, ""), ""
    if directory.is_symlink():
        return "symlink:" + source_key(spec, ""), ""
    if spec.is_portal:
        from covid19_images.sources.portal.state import presence

        fetched = presence(root, spec.name)
        if not fetched.complete:
            return f"unfetched:{fetched.fetched}/{fetched.total}:" + source_key(spec, ""), ""
        return source_key(spec, fetched.digest), fetched.digest
    if not is_checked_out(directory):
        return "absent:" + source_key(spec, ""), ""
    commit = head_commit(directory) or ""
    if clean is None:
        clean = checkout_is_clean(directory)
    if not commit or not clean:
        return UNSETTLED, commit
    return source_key(spec, commit), commit


def input_signatures(
    root: Path, registry: Mapping[str, SourceSpec], keep: Collection[str], clean: Mapping[str, bool]
) -> dict[str, str]:
    return {name: input_signature(root, spec, keep, clean.get(name))[0] for name, spec in registry.items()}


def file_hashes(root: Path) -> dict[str, str]:
    return {name: file_sha256(Path(root) / name) for name in (*WRITTEN, REVIEWS_FILE)}


def reuse_unchanged(
    root: Path,
    registry: Mapping[str, SourceSpec],
    keep: Collection[str],
    clean: Mapping[str, bool],
    cache_dir: Path | None,
) -> BuildResult | None:
    """The last build, when every input and every file it wrote is as it left them; else None."""
    if cache_dir is None:
        return None
    root = Path(root)
    # the cheap questions first: a sync with any input changed reads no written file at all
    cache = SourceCache.recorded(cache_dir)
    build = cache.build
    if not cache.manifest_sha256 or not build or build.get("code") != code_hash():
        return None
    signatures = input_signatures(root, registry, keep, clean)
    if UNSETTLED in signatures.values() or list(build.get("inputs", {}).items()) != list(signatures.items()):
        return None
    if build.get("files") != file_hashes(root) or file_sha256(root / MANIFEST_FILE) != cache.manifest_sha256:
        return None  # now the cache is shown to be the manifest's on disk, with every file it wrote
    try:
        problems = [Problem(**item) for item in build["problems"]]
        commits = {str(k): str(v) for k, v in build["commits"].items()}
        rows = int(build["rows"])
    except (KeyError, TypeError, ValueError):
        return None
    reused = [name for name, signature in signatures.items() if ":" not in signature]

    def load():
        from covid19_images.manifest.io import read_manifest

        return read_manifest(root)

    return BuildResult(
        None, problems, commits, 0, reused, cache, None, True, None, load=load, rows=rows, files_current=True
    )


def record_build(result: BuildResult, signatures: Mapping[str, str], row_commits: Mapping[str, str]) -> None:
    """Put what :func:`reuse_unchanged` checks into the result's cache (the files' hashes come at write time)."""
    if result.cache is None:
        return
    result.cache.build = {
        "code": code_hash(),
        "inputs": dict(signatures),
        "commits": dict(result.commits),
        "row_commits": dict(row_commits),
        "rows": len(result.manifest),
        "problems": [json.loads(json.dumps(vars(p), default=str)) for p in result.problems],
    }


def seal_build(root: Path, cache: SourceCache) -> None:
    """Record the hashes of the files just written (called after the last of them is in place)."""
    if cache.build:
        cache.build["files"] = file_hashes(root)
