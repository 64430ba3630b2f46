"""The source registry (``sources.yaml`` at a data root): which upstreams that root includes.

Each item of its ``sources:`` list is either the name of a catalog source (a plain string:
every fact comes from ``sources/catalog/<name_with_underscores>/source.yaml``), or a
mapping. A mapping whose name is a catalog source overrides some of its fields (``options``,
say); any other mapping is a local source the catalog does not know, with ``parser:`` naming
a catalog source or a layout (:func:`covid19_images.sources.catalog.get_parser`). Every
merged entry gets the same safety checks (name, path, URL policy, branch, parser).
``.gitmodules`` must agree with the registry; ``sync`` registers any source it lists that
git does not know yet.

A source is one of two kinds. ``kind: git`` (the default) is a submodule: ``url`` and
``branch``. ``kind: portal`` is fetched from a data portal and pinned by a lock instead of a
commit: ``portal`` (how it is fetched), ``dataset`` (the portal's stable id), ``version``
(the pinned version) and ``terms_url``, optionally ``files`` (what to fetch); it has no
``url``/``branch`` and never appears in ``.gitmodules``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import yaml

from covid19_images.core.paths import DATASETS_DIR, REGISTRY_FILE
from covid19_images.core.yaml_text import safe_load
from covid19_images.sources.catalog import CatalogError, catalog, option_types, parser_names
from covid19_images.sources.spec import SourceSpec

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_CONTROL_ONLY = re.compile(r"[\x00-\x1f\x7f]")
#: a DNS name or IPv4 address; IPv6 literals are checked with ``ipaddress`` (urlsplit strips their brackets)
_HOST = re.compile(r"[A-Za-z0-9._-]+")
KINDS = ("git", "portal")
#: how a portal source is fetched (``manual``: the user downloads it under an agreement)
PORTALS = ("kaggle", "kaggle-competition", "tcia", "zenodo", "figshare", "s3", "https", "manual")


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


class RegistryError(ValueError):
    """The registry is malformed or names something unsafe."""


def check_url(url: str, *, allow_local: bool = False) -> None:
    """Refuse every URL form that could run a command or read outside the mirror.

    Only ``https://`` is accepted; absolute local paths and ``file:///`` only when the
    caller explicitly allows local mirrors. ``ext::``/``fd::`` and other transport helpers,
    ssh in every spelling (``ssh://``, scp-like ``git@host:-oProxyCommand=...``: option
    injection), anything starting with ``-``, control characters and embedded passwords
    (they would be committed to ``.gitmodules``) are always refused. git enforces the same
    policy again at run time (:func:`covid19_images.sources.git.git_environment`), so a
    ``.gitmodules`` edited behind the registry's back is refused too.
    """
    if not isinstance(url, str) or not url:
        raise RegistryError(f"invalid URL {url!r}: empty")
    if url.lstrip().startswith("-") or "::" in url.partition("/")[0]:
        raise RegistryError(f"refused URL {url!r}: transport helpers and option-like URLs are not allowed")
    if _CONTROL.search(url) or not url.isascii():
        raise RegistryError(f"invalid URL {url!r}: contains spaces, control or non-ASCII characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as err:
        raise RegistryError(f"invalid URL {url!r}: {err}") from err
    scheme = parts.scheme.lower()
    if scheme == "https":
        host = parts.hostname or ""
        if _is_ipv6(host):
            pass
        elif not _HOST.fullmatch(host) or host.startswith(("-", ".")):
            raise RegistryError(f"refused URL {url!r}: missing or malformed host")
        if parts.password is not None:
            raise RegistryError(
                f"refused URL {url!r}: credentials in a URL would be committed; use a credential helper"
            )
        return
    if allow_local:
        if scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
            return
        if not parts.scheme and url.startswith("/") and not url.startswith("//"):
            return
    raise RegistryError(
        f"refused URL {url!r}: only https:// sources are allowed"
        + ("" if allow_local else " (local mirrors need --mirror or --allow-local)")
    )


def check_branch(branch: str) -> None:
    """A branch name git accepts and that cannot be read as an option or a revision range."""
    if (
        not _BRANCH.fullmatch(branch)
        or ".." in branch
        or "//" in branch
        or "@{" in branch
        or branch.endswith(("/", ".", ".lock"))
        or "/." in branch
    ):
        raise RegistryError(f"invalid branch {branch!r}")


def check_name(name: str) -> None:
    """A source name usable as a folder, a submodule name and a catalog package (``-`` -> ``_``)."""
    if not _NAME.fullmatch(name):
        raise RegistryError(f"invalid source name {name!r}: lower-case letters, digits, '-' and '_' (max 64)")


def _within(where: str, check: Callable[[str], None], value: str) -> None:
    """Run one of the checks above, its error prefixed with where in ``sources.yaml`` the value stands."""
    try:
        check(value)
    except RegistryError as err:
        raise RegistryError(f"{where}: {err}") from err


def _spec(entry: dict, index: int) -> SourceSpec:
    if not isinstance(entry, dict):
        raise RegistryError(f"{REGISTRY_FILE}: entry {index} is not a mapping")
    name = str(entry.get("name", ""))
    _within(f"{REGISTRY_FILE}: entry {index}", check_name, name)
    path = entry.get("path", f"{DATASETS_DIR}/{name}")
    pure = PurePosixPath(str(path))
    if (
        pure.is_absolute()
        or ".." in pure.parts
        or pure.parts[:1] != (DATASETS_DIR,)
        or str(pure) != f"{DATASETS_DIR}/{name}"
    ):
        raise RegistryError(f"{REGISTRY_FILE}: source {name}: path {path!r} must be {DATASETS_DIR}/{name}")
    kind = str(entry.get("kind", "git"))
    if kind not in KINDS:
        raise RegistryError(f"{REGISTRY_FILE}: source {name}: kind {kind!r} must be one of {', '.join(KINDS)}")
    url = str(entry.get("url", ""))
    if kind == "git" or url:
        _within(f"{REGISTRY_FILE}: source {name}", check_url, url)
    portal_fields = _portal_fields(name, entry) if kind == "portal" else {}
    branch = str(entry.get("branch", "master"))
    _within(f"{REGISTRY_FILE}: source {name}", check_branch, branch)
    parser = str(entry.get("parser", name))
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", parser) or parser not in parser_names():
        raise RegistryError(
            f"{REGISTRY_FILE}: source {name}: invalid parser name {parser!r}: "
            f"name a catalog source or a layout ({', '.join(parser_names())})"
        )
    modalities = entry.get("modalities", ()) or ()
    options = entry.get("options", {}) or {}
    if not isinstance(modalities, (list, tuple)) or not isinstance(options, dict):
        raise RegistryError(f"{REGISTRY_FILE}: source {name}: 'modalities' must be a list and 'options' a mapping")
    modalities = tuple(str(m) for m in modalities)
    _check_options(name, parser, options)
    flags = {key: entry.get(key, False) for key in ("lfs", "pending")}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise RegistryError(
                f"{REGISTRY_FILE}: source {name}: {key!r} must be true or false (unquoted), not {value!r}"
            )
    return SourceSpec(
        name=name,
        url=url,
        branch=branch,
        parser=parser,
        modalities=modalities,
        license=str(entry.get("license", "")),
        license_url=str(entry.get("license_url", "")),
        citation=str(entry.get("citation", "")).strip(),
        homepage=str(entry.get("homepage", "")),
        description=str(entry.get("description", "")).strip(),
        lfs=flags["lfs"],
        pending=flags["pending"],
        options=dict(options),
        kind=kind,
        **portal_fields,
    )


#: what ``kind:`` may say, and the portals a portal source may name
KINDS = ("git", "portal")
PORTALS = ("kaggle", "kaggle-competition", "tcia", "zenodo", "figshare", "s3", "https", "manual")
_FILE_KEYS = {"name", "into", "extract", "url", "size"}


def _portal_fields(name: str, entry: dict) -> dict:
    """The portal keys of a ``kind: portal`` entry, checked (a file list can name no path outside its folder)."""
    where = f"{REGISTRY_FILE}: source {name}"
    portal = str(entry.get("portal", ""))
    if portal not in PORTALS:
        raise RegistryError(f"{where}: portal {portal!r} must be one of {', '.join(PORTALS)}")
    dataset = str(entry.get("dataset", "") or "")
    if not dataset or _CONTROL.search(dataset):
        raise RegistryError(f"{where}: a portal source needs its stable id in 'dataset:'")
    if not str(entry.get("version", "") or "").strip() and portal != "manual":
        raise RegistryError(f"{where}: a portal source needs 'version' (the pinned version, as the portal names it)")
    if entry.get("terms_url"):
        _within(f"{where}: terms_url", check_url, str(entry["terms_url"]))
    files = entry.get("files", ()) or ()
    if not isinstance(files, (list, tuple)):
        raise RegistryError(f"{where}: 'files' must be a list")
    checked = []
    for item in files:
        item = {"name": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not item.get("name") or set(item) - _FILE_KEYS:
            raise RegistryError(f"{where}: each of 'files' is a name or a mapping of {sorted(_FILE_KEYS)}")
        for key in ("name", "into"):
            value = str(item.get(key, "") or "")
            pure = PurePosixPath(value)
            if value and (pure.is_absolute() or ".." in pure.parts or "\\" in value or _CONTROL_ONLY.search(value)):
                raise RegistryError(f"{where}: files: {key} {value!r} must be a plain relative path")
        if item.get("url"):
            try:
                check_url(str(item["url"]))
            except RegistryError as err:
                raise RegistryError(f"{where}: files: {err}") from err
        checked.append(dict(item))
    return {
        "portal": portal,
        "dataset": dataset,
        "version": str(entry.get("version", "") or ""),
        "terms_url": str(entry.get("terms_url", "") or ""),
        "files": tuple(checked),
    }


_TYPE_NAMES = {bool: "true or false (unquoted)", str: "text", int: "a whole number", float: "a number", list: "a list"}


def _check_options(name: str, parser: str, options: dict) -> None:
    """Options are checked like loader options: a name the parser does not read, or a value of another
    type (``include_augmented: "false"`` is a non-empty string, which Python reads as true), is refused."""
    declared = option_types(parser)
    for key, value in options.items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise RegistryError(
                f"{REGISTRY_FILE}: source {name}: unknown option {key!r} for parser {parser} (it reads: {known})"
            )
        kind = declared[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise RegistryError(
                f"{REGISTRY_FILE}: source {name}: option {key!r} must be {_TYPE_NAMES.get(kind, kind.__name__)}, "
                f"not {value!r}"
            )


def _merged(item: object, index: int) -> object:
    """The full entry of one ``sources:`` item: catalog facts, then the item's own fields on top."""
    try:
        known = catalog()
    except CatalogError as err:
        raise RegistryError(f"the installed source catalog is broken: {err}") from err
    if isinstance(item, str):
        if item not in known:
            raise RegistryError(
                f"{REGISTRY_FILE}: entry {index}: {item!r} is not a catalog source "
                f"(known: {', '.join(known)}); a local source needs a full mapping with url and parser"
            )
        return known[item]
    if isinstance(item, dict) and str(item.get("name", "")) in known:
        return {**known[str(item["name"])], **item}
    return item


def load_registry(root: Path) -> dict[str, SourceSpec]:
    """Read and validate ``<root>/sources.yaml``; order is the file's order."""
    file = Path(root) / REGISTRY_FILE
    if not file.is_file():
        raise RegistryError(f"no {REGISTRY_FILE} in {root}: is this a covid19-images checkout? (use --root)")
    try:
        data = safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RegistryError(f"{file}: not valid YAML: {err}") from err
    entries = (data or {}).get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise RegistryError(f"{file}: expected a top-level 'sources:' list")
    specs: dict[str, SourceSpec] = {}
    for index, entry in enumerate(entries):
        spec = _spec(_merged(entry, index), index)
        if spec.name in specs:
            raise RegistryError(f"{file}: source {spec.name} is listed twice")
        specs[spec.name] = spec
    return specs
