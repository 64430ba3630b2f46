"""The package reads as the pipeline, and no module imports from a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

import covid19_images

PACKAGE = Path(covid19_images.__file__).parent
#: bottom to top; a module may import its own layer and the ones before it. ``browse`` shows
#: what every layer below made (manifest, report findings, duplicate evidence) and serves it;
#: like ``export`` it only reads them, and ``testing`` drives it in a real browser.
LAYERS = (
    "core",
    "imaging",
    "sources",
    "manifest",
    "sync",
    "quality",
    "loaders",
    "export",
    "release",
    "browse",
    "testing",
    "cli",
)
#: the package's own __init__ only forwards to the loaders, lazily, inside the public functions
TOP = "__init__"


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else TOP


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("covid19_images"):
            if node.module == "covid19_images":
                found += [(node.lineno, f"covid19_images.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("covid19_images.")]
    return found


def test_every_module_belongs_to_a_layer() -> None:
    top_level = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    assert top_level - {"__init__", "__pycache__", "py"} <= set(LAYERS), sorted(top_level - set(LAYERS))


def test_no_module_imports_from_a_layer_above_it() -> None:
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = "covid19_images." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        mine = _layer(module)
        if mine == TOP:
            continue
        for line, target in _imports(path):
            theirs = _layer(target)
            if theirs in LAYERS and LAYERS.index(theirs) > LAYERS.index(mine):
                upward.append(f"{path.relative_to(PACKAGE)}:{line} ({mine}) imports {target} ({theirs})")
    assert not upward, "\n".join(upward)


def test_no_module_passes_400_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, long
