"""How metadata paths are kept inside their source folder."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

# re-exported: the root rule has its own module, these names were always importable from here
from covid19_images.core.roots import DATASETS_DIR as DATASETS_DIR
from covid19_images.core.roots import REGISTRY_FILE as REGISTRY_FILE
from covid19_images.core.roots import ROOT_ENV as ROOT_ENV
from covid19_images.core.roots import find_root as find_root


class UnsafePath(ValueError):
    """A path from upstream metadata that would leave its source folder."""


_DRIVE = re.compile(r"^[A-Za-z]:([/\\]|$)")
#: A relative posix path in normal form: no empty, ``.`` or ``..`` parts, no backslash, no NUL.
_PLAIN = re.compile(r"(?![A-Za-z]:(/|$))(?!\.\.?(/|$))[^/\\\0]+(/(?!\.\.?(/|$))[^/\\\0]+)*")


def lexical_problem(relative: str) -> str | None:
    """Why ``relative`` cannot name a file inside its folder, judged from the text alone (None if it can).

    Cheap (no file system access), so parsers can ask it for every metadata row; symlinks
    are :func:`safe_relative`'s job.
    """
    if _PLAIN.fullmatch(relative):
        return None  # the common case, decided by one regular expression
    if not relative or "\0" in relative:
        return f"empty or NUL-containing path {relative!r}"
    text = relative.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        return f"absolute path {relative!r} refused"
    parts = PurePosixPath(text).parts  # never holds "" or "." (pathlib drops them)
    if ".." in parts:
        return f"path {relative!r} climbs out with '..'"
    if not parts:
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
    clean = PurePosixPath(relative.replace("\\", "/"))  # pathlib drops empty and "." parts
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


class SafePaths:
    """:func:`safe_relative` for many paths of one folder, resolving the folder once.

    ``Path.resolve`` per file costs a system call per path component; at 100,000 files that
    dominated a rebuild. A path is only resolved when one of its components is a symlink
    (found by one ``os.scandir`` walk), or lies under a folder the walk could not list (its
    links are unknown; ``""`` when the folder itself is unlistable); any other path that
    passes the lexical checks is inside the folder by construction.
    """

    def __init__(self, source_dir: Path, *, walk: bool = True) -> None:
        """``walk=False``: the caller checks only paths it knows are regular files with no link on
        their way (a clean git checkout's index of regular files), so nothing is walked."""
        self.source_dir = Path(source_dir)
        self.base = self.source_dir.resolve()
        self.links: set[str] = set()
        stack = [""] if walk else []
        while stack:
            prefix = stack.pop()
            try:
                entries = list(os.scandir(self.source_dir / prefix))  # prefix "": the folder itself
            except OSError:  # unlistable (no read permission): its links are unknown, so paths under it are resolved
                self.links.add(prefix)
                continue
            for entry in entries:
                name = f"{prefix}/{entry.name}" if prefix else entry.name
                if entry.is_symlink():
                    self.links.add(name)
                elif entry.is_dir() and name != ".git":  # (a link to a folder is a link, above)
                    stack.append(name)

    def check(self, relative: str) -> str:
        """The normalised posix path, or :class:`UnsafePath` (same answers as :func:`safe_relative`)."""
        if not self.links and _PLAIN.fullmatch(relative):
            return relative  # already normal, no '..', no link anywhere: inside
        problem = lexical_problem(relative)
        if problem:
            raise UnsafePath(problem)
        clean = PurePosixPath(relative.replace("\\", "/"))  # pathlib drops empty and "." parts
        parts = clean.parts
        if "" in self.links or any("/".join(parts[: i + 1]) in self.links for i in range(len(parts))):
            target = (self.source_dir / clean).resolve()
            if target != self.base and self.base not in target.parents:
                raise UnsafePath(f"path {relative!r} resolves outside the source folder (symlink?)")
        return clean.as_posix()


def source_relative(path: str, source: str) -> str:
    """A manifest path (``datasets/<source>/...``) relative to its source folder, as every ``Problem.path`` is."""
    return str(path).removeprefix(f"{DATASETS_DIR}/{source}/")
