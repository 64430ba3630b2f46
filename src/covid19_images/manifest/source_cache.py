"""What lets an unchanged source cost nothing: its cache key, and the cache kept between syncs.

A source's rows and problems are a pure function of its checkout (the commit, when the working
tree is clean), the code that parses and probes it, its registry entry and the settings the
environment gives (decode budgets, pseudonym key). When all three match
what the previous build recorded, that build's rows (still in the manifest it wrote) and
problems are reused without reading one file of the source.

The cache lives in the data root's git directory (``covid19-images-cache/``): never tracked,
never shown as untracked. Its index records the SHA-256 of the manifest it belongs to, so a
manifest edited, replaced or deleted by hand simply turns the cache off for that build.
A source whose files carry identifying DICOM values is cached with its problems redacted and a
guard of those values, never the values (:mod:`covid19_images.manifest.secret_guard`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import git

from covid19_images.core.pseudonyms import pseudonym_key
from covid19_images.core.schema import MANIFEST_COLUMNS, Problem
from covid19_images.imaging.budget import budget_settings
from covid19_images.sources.registry import SourceSpec

#: Bump when a cached entry's meaning changes without the code hash noticing.
CACHE_VERSION = 1
CACHE_DIR = "covid19-images-cache"
_INDEX = "sources.json"
#: Package folders whose code decides a source's rows (parsers, probing, building).
_CODE_DIRS = ("core", "imaging", "sources", "manifest")


@lru_cache(maxsize=1)
def code_hash() -> str:
    """SHA-256 over the code that turns a checkout into rows: any edit invalidates every entry."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for folder in _CODE_DIRS:
        for path in sorted((package / folder).rglob("*")):
            if path.suffix in (".py", ".yaml") and "miniature" not in path.parts and path.is_file():
                digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def settings_fingerprint() -> str:
    """What the environment contributes to a source's rows: the decode budgets (which files are
    refused) and the pseudonym key (hashed: the patient ids). A change re-reads every source."""
    key = hashlib.sha256(pseudonym_key()).hexdigest()
    return json.dumps({**budget_settings(), "pseudonym_key_sha256": key})


def source_key(spec: SourceSpec, commit: str) -> str:
    """The cache key of one source at one commit: commit + code + registry entry + schema + settings."""
    entry = dataclasses.asdict(spec)  # options and files too (they take no part in the spec's equality)
    parts = [CACHE_VERSION, commit, code_hash(), entry, list(MANIFEST_COLUMNS), settings_fingerprint()]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()  # default: YAML dates in options


def checkout_is_clean(directory: Path) -> bool:
    """True when the working tree is exactly its commit: nothing modified, untracked or ignored."""
    try:
        # untracked and ignored files count, whatever status.showUntrackedFiles the user's config says
        status = git.Repo(directory).git.status("--porcelain", "--untracked-files=all", "--ignored")
    except (git.GitError, ValueError):
        return False
    return status == ""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks ("" when there is no file)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        return ""
    return digest.hexdigest()


def cache_dir_of(root: Path) -> Path | None:
    """``<root's git dir>/covid19-images-cache``, or None when the root is not a git repository."""
    try:
        return Path(git.Repo(root).git_dir) / CACHE_DIR
    except (git.GitError, ValueError):
        return None


@dataclass
class SourceEntry:
    key: str
    rows: int
    problems: list[Problem]
    #: token of the row memo the build that wrote these rows saved ("" = none): its rows may be
    #: carried into the next build of the source (:mod:`covid19_images.manifest.row_carry`)
    memo: str = ""
    #: :meth:`~covid19_images.manifest.secret_guard.Guard.to_json` of the source's identifying
    #: values (None: its files carry none); its problems are then stored redacted
    guard: dict | None = None


@dataclass
class SourceCache:
    """Per-source entries of the build that wrote the manifest whose hash is ``manifest_sha256``."""

    manifest_sha256: str = ""
    entries: dict[str, SourceEntry] = field(default_factory=dict)
    #: SHA-256 of manifests/reviewed-pairs.csv the manifest was built with ("" = none): a new
    #: review changes duplicate groups without any source changing
    reviews_sha256: str = ""
    #: the whole build, for :mod:`covid19_images.manifest.unchanged`: each source's input
    #: signature in registry order, the code, and what the build wrote besides the manifest
    build: dict = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path, manifest_file: Path, manifest_sha256: str | None = None) -> SourceCache:
        """The cache for the manifest now on disk; empty if none, unreadable, or another manifest's.

        ``manifest_sha256``: the SHA-256 of the manifest bytes the caller read and checked (what
        its rows come from), so that the file is not read and hashed once more: 0.1 s at
        200,000 images (121 MB), each time.
        """
        return cls._read(directory, lambda: file_sha256(manifest_file) if manifest_sha256 is None else manifest_sha256)

    @classmethod
    def recorded(cls, directory: Path) -> SourceCache:
        """The cache as it was saved, NOT yet shown to belong to the manifest on disk: the caller
        compares :attr:`manifest_sha256` with the file's hash before believing any of it."""
        return cls._read(directory, None)

    @classmethod
    def _read(cls, directory: Path, manifest_digest: Callable[[], str] | None) -> SourceCache:
        """The saved cache when it belongs to the manifest whose hash ``manifest_digest`` gives
        (asked only once the index reads; None: to whichever manifest it names)."""
        try:
            data = json.loads((directory / _INDEX).read_bytes())
            if data.get("version") != CACHE_VERSION:
                return cls()
            digest = data.get("manifest_sha256") if manifest_digest is None else manifest_digest()
            if not isinstance(digest, str) or data.get("manifest_sha256") != digest:
                return cls()
            entries = {
                name: SourceEntry(
                    item["key"],
                    int(item["rows"]),
                    [Problem(**p) for p in item["problems"]],
                    str(item.get("memo", "")),
                    item.get("guard"),
                )
                for name, item in data["sources"].items()
            }
            reviews = str(data.get("reviews_sha256", ""))
            build = data.get("build", {})
            if not isinstance(build, dict):
                build = {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # torn, edited or another shape
            return cls()
        return cls(digest, entries, reviews, build)

    def save(self, directory: Path, manifest_sha256: str) -> None:
        """Record the entries as belonging to the manifest whose bytes hash to ``manifest_sha256``."""
        directory.mkdir(parents=True, exist_ok=True)
        data = {
            "version": CACHE_VERSION,
            "manifest_sha256": manifest_sha256,
            "reviews_sha256": self.reviews_sha256,
            "build": self.build,
            "sources": {
                name: {
                    "key": e.key,
                    "rows": e.rows,
                    "problems": [dataclasses.asdict(p) for p in e.problems],
                    "memo": e.memo,
                    **({"guard": e.guard} if e.guard is not None else {}),
                }
                for name, e in sorted(self.entries.items())
            },
        }
        tmp = directory / f".{_INDEX}.tmp"
        tmp.write_text(json.dumps(data))  # ASCII (escapes): the same bytes in every locale
        tmp.replace(directory / _INDEX)
