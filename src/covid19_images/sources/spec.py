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

    @property
    def path(self) -> str:
        """Submodule path, always ``datasets/<name>``: the registry cannot point elsewhere."""
        return f"{DATASETS_DIR}/{self.name}"
