"""Where the project root is, and how metadata paths are kept inside their source folder."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from .registry import REGISTRY_FILE

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


def safe_relative(source_dir: Path, relative: str) -> PurePosixPath:
    """Normalise a metadata path and prove it stays inside ``source_dir``.

    Refuses absolute paths, ``..`` components, NUL bytes and symlinks (at any level) that
    resolve outside the source folder: upstream metadata is data, not something to trust.
    """
    if not relative or "\0" in relative:
        raise UnsafePath(f"empty or NUL-containing path {relative!r}")
    text = relative.replace("\\", "/")
    pure = PurePosixPath(text)
    if pure.is_absolute() or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UnsafePath(f"absolute path {relative!r} refused")
    if ".." in pure.parts:
        raise UnsafePath(f"path {relative!r} climbs out with '..'")
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts:
        raise UnsafePath(f"path {relative!r} names no file")
    clean = PurePosixPath(*parts)
    base = source_dir.resolve()
    target = (source_dir / clean).resolve()
    if target != base and base not in target.parents:
        raise UnsafePath(f"path {relative!r} resolves outside the source folder (symlink?)")
    return clean
