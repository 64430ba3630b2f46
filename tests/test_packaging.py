"""pyproject.toml declares exactly the third-party packages the library imports.

An import missing from the declarations works on a developer's machine (something else
pulled the package in) and breaks a clean ``pip install``; a declaration nothing imports
makes every user download it for nothing.
"""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "covid19_images"
#: pydicom finds its JPEG / JPEG 2000 decoders through entry points: declared, never imported.
PLUGINS = {"pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg"}


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    extras = {
        canonicalize_name(Requirement(r).name)
        for requirements in project["optional-dependencies"].values()
        for r in requirements
    }
    return core, extras - {"covid19-images"}


def _imported_distributions() -> dict[str, set[str]]:
    """Distribution -> the modules of the package that import it (statically, lazily or not)."""
    owners = packages_distributions()
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "covid19_images":
                    continue
                for dist in owners.get(top, [f"<no installed distribution for {top}>"]):
                    found.setdefault(canonicalize_name(dist), set()).add(path.relative_to(PACKAGE).as_posix())
    return found


def test_every_imported_package_is_declared() -> None:
    core, extras = _declared()
    undeclared = {dist: sorted(where) for dist, where in _imported_distributions().items() if dist not in core | extras}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_every_declared_dependency_is_imported() -> None:
    core, _extras = _declared()
    unused = core - set(_imported_distributions()) - PLUGINS
    assert not unused, f"declared in pyproject.toml but never imported by src/: {sorted(unused)}"


def test_every_dependency_is_pinned_in_constraints() -> None:
    core, extras = _declared()
    pinned = {
        canonicalize_name(line.split("==")[0])
        for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith("#")
    }
    unpinned = sorted((core | extras) - pinned)
    assert not unpinned, f"declared but not pinned in constraints.txt: {unpinned}"
