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
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import yaml

from covid19_images.core.paths import DATASETS_DIR, REGISTRY_FILE
from covid19_images.sources.catalog import CatalogError, catalog, parser_names

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
#: a DNS name or IPv4 address; IPv6 literals are checked with ``ipaddress`` (urlsplit strips their brackets)
_HOST = re.compile(r"[A-Za-z0-9._-]+")
KINDS = ("git", "portal")
#: how a portal source is fetched (``manual``: the user downloads it under an agreement)
PORTALS = ("kaggle", "kaggle-competition", "tcia", "zenodo", "figshare", "https", "manual")


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


class RegistryError(ValueError):
    """The registry is malformed or names something unsafe."""


@dataclass(frozen=True)
class SourceSpec:
    """One upstream dataset as the registry declares it."""

    name: str
    url: str
    branch: str
    parser: str
    modalities: tuple[str, ...]
    license: str
    license_url: str = ""
    citation: str = ""
    homepage: str = ""
    description: str = ""
    lfs: bool = False
    pending: bool = False
    options: dict = field(default_factory=dict, hash=False, compare=False)
    kind: str = "git"
    portal: str = ""  # portal sources only: one of PORTALS
    dataset: str = ""  # the portal's stable id (Kaggle owner/slug, TCIA collection, Zenodo record, URL)
    version: str = ""  # the pinned portal version (a Kaggle version number, a TCIA/Zenodo version)
    terms_url: str = ""  # where a user reads and accepts the terms
    files: tuple = field(default=(), hash=False, compare=False)  # mappings: path, extract, ...

    @property
    def is_portal(self) -> bool:
        """Fetched from a portal and pinned by a lock, not a git submodule."""
        return self.kind == "portal"

    @property
    def path(self) -> str:
        """Submodule path, always ``datasets/<name>``: the registry cannot point elsewhere."""
        return f"{DATASETS_DIR}/{self.name}"


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


def _spec(entry: dict, index: int) -> SourceSpec:
    if not isinstance(entry, dict):
        raise RegistryError(f"{REGISTRY_FILE}: entry {index} is not a mapping")
    name = str(entry.get("name", ""))
    try:
        check_name(name)
    except RegistryError as err:
        raise RegistryError(f"{REGISTRY_FILE}: entry {index}: {err}") from err
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
        raise RegistryError(f"{REGISTRY_FILE}: source {name}: kind {kind!r} is not one of {', '.join(KINDS)}")
    portal = _portal_fields(entry, name) if kind == "portal" else {}
    url = str(entry.get("url", ""))
    try:
        if kind == "git" or url:
            check_url(url)
    except RegistryError as err:
        raise RegistryError(f"{REGISTRY_FILE}: source {name}: {err}") from err
    branch = str(entry.get("branch", "master"))
    try:
        check_branch(branch)
    except RegistryError as err:
        raise RegistryError(f"{REGISTRY_FILE}: source {name}: {err}") from err
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
        lfs=bool(entry.get("lfs", False)),
        pending=bool(entry.get("pending", False)),
        options=dict(options),
        kind=kind,
        **portal,
    )


def _portal_fields(entry: dict, name: str) -> dict:
    """The fields of a ``kind: portal`` entry, checked: a known portal, an id, a version, safe file paths."""
    where = f"{REGISTRY_FILE}: source {name}"
    portal = str(entry.get("portal", ""))
    if portal not in PORTALS:
        raise RegistryError(f"{where}: portal {portal!r} is not one of {', '.join(PORTALS)}")
    dataset, version = str(entry.get("dataset", "")).strip(), str(entry.get("version", "")).strip()
    if not dataset or re.search(r"[\x00-\x1f\x7f]", dataset):
        raise RegistryError(
            f"{where}: a portal source needs 'dataset' (the portal's stable id), without control characters"
        )
    if not version and portal != "manual":
        raise RegistryError(f"{where}: a portal source needs 'version' (the pinned version, as the portal names it)")
    terms = str(entry.get("terms_url", ""))
    if terms:
        try:
            check_url(terms)
        except RegistryError as err:
            raise RegistryError(f"{where}: terms_url: {err}") from err
    files = entry.get("files", ()) or ()
    if not isinstance(files, (list, tuple)):
        raise RegistryError(f"{where}: 'files' must be a list")
    checked = []
    for index, item in enumerate(files):
        item = {"path": item} if isinstance(item, str) else item
        path = str(item.get("path", "")) if isinstance(item, dict) else ""
        pure = PurePosixPath(path)
        if not path or pure.is_absolute() or ".." in pure.parts or re.search(r"[\x00-\x1f\x7f]", path):
            raise RegistryError(f"{where}: files[{index}]: path {path!r} must be relative and stay inside the source")
        if item.get("url"):
            try:
                check_url(str(item["url"]))
            except RegistryError as err:
                raise RegistryError(f"{where}: files[{index}]: {err}") from err
        checked.append({**item, "extract": bool(item.get("extract", False))})
    return {"portal": portal, "dataset": dataset, "version": version, "terms_url": terms, "files": tuple(checked)}


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
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
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
