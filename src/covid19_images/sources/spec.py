"""One upstream dataset as a registry declares it: the record every layer above passes around.

Apart from :mod:`covid19_images.sources.registry` (which reads and checks ``sources.yaml``
and the catalog) so that the parsers' context (:mod:`covid19_images.sources.parsing`) can
hold a spec without importing the registry, which imports the catalog, which names the
parsers' context: no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from covid19_images.core.paths import DATASETS_DIR


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
    #: ``git`` (a submodule) or ``portal`` (fetched on demand, pinned by ``manifests/locks/<name>.lock.tsv``)
    kind: str = "git"
    #: portal sources only: which portal, the dataset's stable id there, its pinned version,
    #: the terms a user must accept, and the files or series to fetch (``sources.portal``)
    portal: str = ""
    dataset: str = ""
    version: str = ""
    terms_url: str = ""
    files: tuple = field(default=(), hash=False, compare=False)

    @property
    def is_portal(self) -> bool:
        return self.kind == "portal"

    @property
    def path(self) -> str:
        """Submodule path, always ``datasets/<name>``: the registry cannot point elsewhere."""
        return f"{DATASETS_DIR}/{self.name}"
