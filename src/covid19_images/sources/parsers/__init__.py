"""Per-source parsers: one module per upstream layout.

A parser module defines ``parse(ctx: SourceContext) -> Iterator[Entry | Problem]``. It maps
the upstream's own layout and metadata to :class:`~covid19_images.core.schema.Entry` rows and
yields a :class:`~covid19_images.core.schema.Problem` for anything it has to skip. The builder
does the rest (safe paths, hashing, format, geometry, ids, splits), so parsers stay small.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from types import ModuleType

from covid19_images.core.schema import Entry, Problem
from covid19_images.sources.parsing import SourceContext

ParseFn = Callable[[SourceContext], Iterator[Entry | Problem]]


def get_parser(name: str) -> ParseFn:
    """Import ``covid19_images.sources.parsers.<name>`` and return its ``parse``."""
    try:
        module: ModuleType = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"{__name__}.{name}":
            raise LookupError(f"no parser module covid19_images/parsers/{name}.py") from err
        raise
    parse = getattr(module, "parse", None)
    if not callable(parse):
        raise LookupError(f"parser module {name} has no parse(ctx) function")
    return parse


__all__ = ["Entry", "ParseFn", "Problem", "SourceContext", "get_parser"]
