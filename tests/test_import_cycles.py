"""No import cycle anywhere in the package, and the loaders' rooms import one way.

The graph is drawn from the source (AST), not from what one run happens to import, and it
counts every import statement wherever it stands: at module level, inside a function (a
lazy import is still a dependency, and a lazy cycle is a cycle that only hides until some
call order trips it), and under ``if TYPE_CHECKING:`` (a cycle in the types is a cycle in
the design, and checkers and readers follow it). ``from package import name`` is an edge to
the submodule ``package.name`` when there is one, else to ``package`` itself (its
``__init__``). The implicit import of parent packages (``import a.b.c`` runs ``a`` and
``a.b`` first) is not an edge: every submodule would otherwise form a cycle with a parent
``__init__`` that forwards to it; an explicit import of the parent is counted like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import covid19_images

PACKAGE = Path(covid19_images.__file__).parent
LOADERS = "covid19_images.loaders"
#: the loaders' framework rooms, and the rooms each may import besides the neutral part
ROOMS = {"torch": set(), "tf": set(), "fastai": {"torch"}}  # fastai is built on torch
FRAMEWORKS = ("torch", "torchvision", "tensorflow", "keras", "fastai", "triton")


def _modules(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (``__init__`` named as its package)."""
    found = {}
    for path in package_dir.rglob("*.py"):
        parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _targets(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Everything ``module`` imports by name (absolute or relative), at any depth of its code."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return out


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """The package's own modules and, for each, the package's modules it imports."""
    known = _modules(package_dir)
    return {m: {t for t in _targets(m, p, known) if t in known and t != m} for m, p in known.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path ``a -> b -> ... -> a``) per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(root: str) -> None:  # iterative Tarjan: the graph may be deeper than the recursion limit
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_one_cycle(graph, set(c)) for c in components]


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover - a component always has one


def test_the_package_has_no_import_cycle() -> None:
    cycles = import_cycles(import_graph(PACKAGE))
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_cycles_are_found_through_lazy_type_only_and_package_imports(tmp_path: Path) -> None:
    """The detector itself: each kind of edge it claims to count closes a cycle it reports."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from pkg.b import g\n",  # lazy import
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import thing\n",
        "sub/__init__.py": "from .c import thing\n",  # relative, to a submodule
        "sub/c.py": "from pkg import a\nthing = 1\n",  # ``from package import module``
        "d.py": "import pkg.a\n",  # imports into the cycle, is not part of it
    }
    for name, text in files.items():
        (package / name).write_text(text, encoding="utf-8")
    assert import_cycles(import_graph(package)) == [["pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.a"]]
    (package / "sub" / "c.py").write_text("thing = 1\n", encoding="utf-8")
    assert import_cycles(import_graph(package)) == []


def _room(module: str) -> str | None:
    """The framework room a loaders module belongs to (None: the framework-neutral part)."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and module.startswith(LOADERS + ".") and parts[2] in ROOMS else None


def test_loaders_rooms_import_only_the_neutral_part_and_the_neutral_part_no_room() -> None:
    graph = import_graph(PACKAGE)
    wrong = []
    for module, targets in graph.items():
        if not module.startswith(LOADERS):
            continue
        mine = _room(module)
        for target in targets:
            theirs = _room(target)
            if theirs is not None and theirs != mine and theirs not in ROOMS.get(mine or "", set()):
                wrong.append(f"{module} ({mine or 'neutral'}) imports {target} ({theirs})")
    # nothing outside the loaders reaches into a room except through the registry (by name)
    wrong += [f"{m} imports {t}" for m, ts in graph.items() if not m.startswith(LOADERS) for t in ts if _room(t)]
    assert not wrong, "\n".join(sorted(wrong))


def test_the_neutral_part_of_the_loaders_imports_no_framework_anywhere() -> None:
    """Not even inside a function: the neutral part runs the same under every framework."""
    found = []
    for module, path in _modules(PACKAGE).items():
        if not module.startswith(LOADERS) or _room(module):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            found += [f"{module}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in FRAMEWORKS]
    assert not found, "\n".join(found)
