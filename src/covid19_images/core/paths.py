"""Where the project root is, and how metadata paths are kept inside their source folder."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

#: The registry file at the top of a data root.
REGISTRY_FILE = "sources.yaml"
#: Where the submodules of a data root live: ``datasets/<source>``.
DATASETS_DIR = "datasets"
ROOT_ENV = "COVID19_IMAGES_ROOT"


def find_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` if given, else ``$COVID19_IMAGES_ROOT``, else the checkout holding this package, else cwd."""
    if root is not None:
        return Path(root).resolve()
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / REGISTRY_FILE).is_file() and (parent / "src" / "covid19_images").is_dir():
            return parent
    return Path.cwd().resolve()


class UnsafePath(ValueError):
    """A path from upstream metadata that would leave its source folder."""


_DRIVE = re.compile(r"^[A-Za-z]:([/\\]|$)")


def lexical_problem(relative: str) -> str | None:
    """Why ``relative`` cannot name a file inside its folder, judged from the text alone (None if it can).

    Cheap (no file system access), so parsers can ask it for every metadata row; symlinks
    are :func:`safe_relative`'s job.
    """
    if not relative or "\0" in relative:
        return f"empty or NUL-containing path {relative!r}"
    text = relative.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        return f"absolute path {relative!r} refused"
    parts = PurePosixPath(text).parts
    if ".." in parts:
        return f"path {relative!r} climbs out with '..'"
    if not [p for p in parts if p not in ("", ".")]:
        return f"path {relative!r} names no file"
    return None


def safe_relative(source_dir: Path, relative: str) -> PurePosixPath:
    """Normalise a metadata path and prove it stays inside ``source_dir``.

    Refuses absolute paths, ``..`` components, NUL bytes and symlinks (at any level) that
    resolve outside the source folder: upstream metadata is data, not something to trust.
    """
    problem = lexical_problem(relative)
    if problem:
        raise UnsafePath(problem)
    parts = [p for p in PurePosixPath(relative.replace("\\", "/")).parts if p not in ("", ".")]
    clean = PurePosixPath(*parts)
    base = source_dir.resolve()
    target = (source_dir / clean).resolve()
    if target != base and base not in target.parents:
        raise UnsafePath(f"path {relative!r} resolves outside the source folder (symlink?)")
    return clean


def shown_path(relative: str) -> str:
    """``relative`` printable and writable as UTF-8: bytes that are not UTF-8 as backslash escapes.

    ``os.walk`` hands back a name that is not UTF-8 (``caf\\xe9`` from a Windows zip) with
    surrogates, which cannot be written to a UTF-8 CSV or printed; this is how such a name
    appears in every message. A name is valid UTF-8 exactly when ``shown_path`` returns it unchanged.
    """
    return os.fsencode(relative).decode("utf-8", errors="backslashreplace")
