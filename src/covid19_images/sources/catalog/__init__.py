"""The source catalog: one folder per upstream, holding everything specific to it.

``catalog/<source_name_with_underscores>/`` is a source's only home:

* ``__init__.py``: its parser, ``parse(ctx: SourceContext) -> Iterator[Entry]``. It maps the
  upstream's own layout and metadata to :class:`~covid19_images.core.schema.Entry` rows and
  reports anything it has to skip with ``ctx.report(...)`` (the one way a parser reports a
  problem). The builder does the rest (safe paths, hashing, format, geometry, ids, splits).
  A parser shared by several sources lives in ``sources/layouts/``; the source's
  ``__init__.py`` then just re-exports its ``parse``.
* ``source.yaml``: its registry entry (url, branch, licence, citation, options ...; the
  fields of :class:`~covid19_images.sources.registry.SourceSpec`) plus two catalog facts:
  ``samples``, the folders of ``../shared/upstream`` its test mirror is built from (oldest
  snapshot first), ``covidx``, the name COVIDx label files give the source, if any, and
  ``covidx_release``, the prebuilt COVIDx release (``CXR-4``) a source is, if it is one, and
  ``patient_namespace``, a name shared by sources whose raw patient ids name the same people
  (the MRNs of MIDRC-RICORD-1a, -1b and -1c): their patients are joined across sources when
  splits are assigned (:func:`patient_namespaces`).
* ``miniature/``: a tiny embedded copy of the upstream layout for tests and demos.

The catalog is found by scanning this package, so nothing else lists the sources: the
sample folders (:func:`sample_folders`), the COVIDx names (:func:`covidx_names`) and the
``parser:`` lookup (:func:`get_parser`) all derive from it. A data root's ``sources.yaml``
only says which catalog sources it includes (see :mod:`covid19_images.sources.registry`).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from collections.abc import Callable, Iterator
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from covid19_images.core.yaml_text import safe_load

if TYPE_CHECKING:
    from covid19_images.core.schema import Entry
    from covid19_images.sources.parsing import SourceContext

    ParseFn = Callable[[SourceContext], Iterator[Entry]]

SOURCE_FILE = "source.yaml"
MINIATURE_DIR = "miniature"
#: Keys of ``source.yaml`` that are catalog facts rather than registry fields.
CATALOG_ONLY = ("samples", "covidx", "covidx_release", "patient_namespace")
LAYOUTS_PACKAGE = "covid19_images.sources.layouts"


class CatalogError(ValueError):
    """A catalog folder is malformed (a packaging bug, not a user error)."""


def package_name(source: str) -> str:
    """The catalog folder (and module) name of a source: ``ahp-ct`` -> ``ahp_ct``."""
    return source.replace("-", "_")


@cache
def catalog() -> dict[str, dict[str, Any]]:
    """Source name -> its ``source.yaml`` mapping, for every catalog folder, sorted by name."""
    found: dict[str, dict[str, Any]] = {}
    for folder in sorted(files(__name__).iterdir(), key=lambda item: item.name):
        entry_file = folder / SOURCE_FILE
        if not folder.is_dir() or not entry_file.is_file():
            continue
        try:
            entry = safe_load(entry_file.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise CatalogError(f"catalog/{folder.name}/{SOURCE_FILE}: not valid YAML: {err}") from err
        if not isinstance(entry, dict) or package_name(str(entry.get("name", ""))) != folder.name:
            raise CatalogError(f"catalog/{folder.name}/{SOURCE_FILE}: must be a mapping whose name is its folder's")
        found[str(entry["name"])] = entry
    return found


def sample_folders() -> dict[str, tuple[str, ...]]:
    """Source name -> its sample folders in ``../shared/upstream``, oldest snapshot first."""
    return {name: tuple(entry.get("samples") or ()) for name, entry in catalog().items() if entry.get("samples")}


def covidx_names() -> dict[str, str]:
    """COVIDx source name (``cohen``) -> the catalog source it is held as (``ieee8023-covid-chestxray``)."""
    return {str(entry["covidx"]): name for name, entry in catalog().items() if entry.get("covidx")}


def patient_namespaces() -> dict[str, str]:
    """Source name -> the patient namespace it shares with other sources (``patient_namespace``)."""
    found = {name: entry.get("patient_namespace") for name, entry in catalog().items()}
    return {name: str(space) for name, space in found.items() if space}


@cache
def layout_names() -> tuple[str, ...]:
    """Modules of ``sources/layouts/`` that define ``parse``: parsers shared by several sources.

    Found in the modules' text, not by importing them: loading the registry must not import
    every parser's dependencies (pandas, pydicom) for a sync that parses nothing.
    """
    layouts = importlib.util.find_spec(LAYOUTS_PACKAGE)
    names = []
    for folder in layouts.submodule_search_locations or ():
        for module in pkgutil.iter_modules([folder]):
            text = (Path(folder) / f"{module.name}.py").read_text(encoding="utf-8") if not module.ispkg else ""
            if re.search(r"^def parse\(", text, re.MULTILINE):
                names.append(module.name)
    return tuple(sorted(names))


def parser_names() -> tuple[str, ...]:
    """Every value ``parser:`` may take: a catalog source name or a layout module name."""
    return (*catalog(), *layout_names())


#: options every source may set, read by the builder rather than the parser: the DICOM header
#: values the publisher assigned as de-identified ids (``manifest.privacy``, ``source_build``)
BUILDER_OPTIONS: dict[str, type] = {"published_ids": list}


def option_types(name: str) -> dict[str, type]:
    """The options a source may set: the builder's, plus its parser's ``OPTIONS`` (name -> type)."""
    module_name = f"{__name__}.{package_name(name)}" if name in catalog() else f"{LAYOUTS_PACKAGE}.{name}"
    declared = getattr(importlib.import_module(module_name), "OPTIONS", {})
    return {**BUILDER_OPTIONS, **(dict(declared) if isinstance(declared, dict) else {})}


def get_parser(name: str) -> ParseFn:
    """The ``parse`` of a catalog source (by source name) or of a layout module (by module name)."""
    if name in catalog():
        module_name = f"{__name__}.{package_name(name)}"
    elif name in layout_names():
        module_name = f"{LAYOUTS_PACKAGE}.{name}"
    else:
        raise LookupError(
            f"parser {name!r} is neither a catalog source nor a layout (known: {', '.join(parser_names())})"
        )
    parse = getattr(importlib.import_module(module_name), "parse", None)
    if not callable(parse):
        raise LookupError(f"{module_name} has no parse(ctx) function")
    return parse


__all__ = [
    "CATALOG_ONLY",
    "CatalogError",
    "catalog",
    "covidx_names",
    "get_parser",
    "layout_names",
    "option_types",
    "package_name",
    "parser_names",
    "patient_namespaces",
    "sample_folders",
]
