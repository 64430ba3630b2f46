"""Which data root a command, loader or notebook uses when none is named: one rule for all.

1. ``root=`` (Python) or ``--root`` (command line);
2. else ``$COVID19_IMAGES_ROOT``;
3. else the nearest folder at or above the current directory that holds ``sources.yaml``
   (a root: a clone of this project, ``build/demo/root``, a root of your own), else the
   clone that holds the installed package (an editable install);
4. a clone that holds no data yet (no ``manifests/manifest.csv`` and no source checked out
   under ``datasets/``) defers to the root its last ``make demo`` built, named in
   ``build/demo-root``: so after ``make demo`` every README snippet, command and notebook
   works as written in the same shell, on the demo data, and says so once (a notice on
   stderr). Sync a source in the clone, or choose by 1 or 2, and that notice goes away;
5. else the current directory (and the error on loading says what to run).

The pointer file holds a path only; nothing about the user is stored.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

#: The registry file at the top of a data root.
REGISTRY_FILE = "sources.yaml"
#: Where the submodules of a data root live: ``datasets/<source>``.
DATASETS_DIR = "datasets"
ROOT_ENV = "COVID19_IMAGES_ROOT"
#: Inside a clone: the file ``make demo`` writes with the absolute path of the root it built.
DEMO_POINTER = "build/demo-root"
_MANIFEST = "manifests/manifest.csv"

_noticed: set[Path] = set()


@dataclass(frozen=True)
class RootChoice:
    """The root in use and which step of the rule chose it (``argument``, ``environment``,
    ``found``, ``package``, ``demo`` or ``cwd``)."""

    path: Path
    origin: str

    def notice(self) -> str | None:
        """What to tell the user when the root is not the one they would expect: the demo's."""
        if self.origin != "demo":
            return None
        return (
            f"covid19-images: using the demo root {self.path} (from {DEMO_POINTER} of this clone, which holds no data "
            f"yet): test data, not medical images. Pass root=/--root or set {ROOT_ENV} to use another."
        )


def holds_data(root: Path) -> bool:
    """A manifest, or at least one source checked out under ``datasets/``."""
    if (root / _MANIFEST).is_file():
        return True
    datasets = root / DATASETS_DIR
    try:
        return any(folder.is_dir() and any(folder.iterdir()) for folder in datasets.iterdir())
    except OSError:
        return False


def demo_root_of(clone: Path) -> Path | None:
    """The root the clone's last ``make demo`` built, if it still holds a manifest."""
    try:
        text = (clone / DEMO_POINTER).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    target = Path(text) if Path(text).is_absolute() else clone / text
    return target.resolve() if text and (target / _MANIFEST).is_file() else None


def nearest_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds ``sources.yaml``."""
    for folder in (start, *start.parents):
        if (folder / REGISTRY_FILE).is_file():
            return folder
    return None


def package_clone() -> Path | None:
    """The clone holding this package (an editable install or ``PYTHONPATH=src``), if any."""
    for parent in Path(__file__).resolve().parents:
        if (parent / REGISTRY_FILE).is_file() and (parent / "src" / "covid19_images").is_dir():
            return parent
    return None


def locate_root(root: str | os.PathLike | None = None) -> RootChoice:
    """The data root by the rule in this module's docstring, and which step chose it."""
    if root is not None:
        return RootChoice(Path(root).resolve(), "argument")
    if os.environ.get(ROOT_ENV):
        return RootChoice(Path(os.environ[ROOT_ENV]).resolve(), "environment")
    cwd = Path.cwd().resolve()
    found, origin = nearest_root(cwd), "found"
    if found is None:
        found, origin = package_clone(), "package"
    if found is None:
        return RootChoice(cwd, "cwd")
    if not holds_data(found):
        demo = demo_root_of(found)
        if demo is not None:
            return RootChoice(demo, "demo")
    return RootChoice(found, origin)


def find_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root``, else ``$COVID19_IMAGES_ROOT``, else the nearest ``sources.yaml``
    at or above the current directory (a clone without data: the root its ``make demo`` built),
    else the clone holding this package, else the current directory.

    When the demo's root is chosen implicitly, a notice says so on stderr, once per process.
    """
    choice = locate_root(root)
    message = choice.notice()
    if message and choice.path not in _noticed:
        _noticed.add(choice.path)
        print(message, file=sys.stderr)
    return choice.path


__all__ = [
    "DATASETS_DIR",
    "DEMO_POINTER",
    "REGISTRY_FILE",
    "ROOT_ENV",
    "RootChoice",
    "demo_root_of",
    "find_root",
    "holds_data",
    "locate_root",
    "nearest_root",
    "package_clone",
]
