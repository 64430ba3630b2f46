"""The miniatures shipped with the package, laid out like ``../shared/upstream``.

Each registered source carries a tiny copy of its upstream in
``covid19_images/sources/catalog/<source>/miniature/`` (real layout, trimmed real metadata,
downscaled real pictures where the licence allows, synthetic stand-ins elsewhere; built by
``scripts/build_miniatures.py``). ``materialize_miniatures`` copies them into a folder with the
same names as the real sample folders, so everything that reads ``../shared/upstream`` (the
mirrors, the demo, the test fixtures) runs unchanged on a machine with nothing beside the clone.

Which data a run uses: ``COVID19_IMAGES_SHARED`` = ``none`` (or ``miniature``) forces the
miniatures, any other value is a samples folder; unset, ``../shared/upstream`` is used where it
exists and the miniatures otherwise.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

from covid19_images.testing.mirrors import SAMPLE_FOLDERS, default_shared, shared_available

ENV_VAR = "COVID19_IMAGES_SHARED"
MINIATURE_WORDS = ("none", "miniature")
#: files a miniature carries about itself, never part of the upstream tree.
MINIATURE_NOTES = ("SYNTHETIC.md",)
#: sources whose miniature holds several upstream snapshots: sub-folder -> sample folder, oldest first.
SNAPSHOT_FOLDERS: dict[str, tuple[tuple[str, str], ...]] = {
    "ieee8023-covid-chestxray": (
        ("548bb58", "ieee8023-covid-chestxray-dataset__pinned-548bb58"),
        ("584034a", "ieee8023-covid-chestxray-dataset"),
    ),
    "medseg-ct": (
        ("lfs-pointers", "coyotespike-medseg_ct_dataset"),
        ("lfs-resolved", "coyotespike-medseg_ct_dataset__lfs-resolved"),
    ),
}
MARKER = "MINIATURE.md"


def catalog_dir() -> Path:
    """Where the per-source folders live inside the installed package."""
    return Path(__file__).resolve().parents[1] / "sources" / "catalog"


def miniature_dir(source: str) -> Path:
    """``catalog/<source_with_underscores>/miniature`` of one registered source."""
    return catalog_dir() / source.replace("-", "_") / "miniature"


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*MINIATURE_NOTES), symlinks=True)


def materialize_miniatures(destination: Path) -> Path:
    """Copy every miniature into ``destination/<sample folder>`` (the ``../shared/upstream`` names)."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for source, folders in SAMPLE_FOLDERS.items():
        mini = miniature_dir(source)
        if not mini.is_dir():
            continue
        layout = SNAPSHOT_FOLDERS.get(source) or ((".", folders[-1]),)
        for sub, folder in layout:
            target = destination / folder
            if target.exists():
                shutil.rmtree(target)
            _copy_tree(mini / sub, target)
            written.append(folder)
    lines = [
        "# Miniature upstream samples",
        "",
        "Copied from the package's `sources/catalog/*/miniature/` folders (see their SYNTHETIC.md and",
        "the repository's ATTRIBUTION.md). Not the real samples: a few files per source.",
        "",
        *(f"- `{name}`" for name in written),
    ]
    (destination / MARKER).write_text("\n".join(lines) + "\n")
    (destination / "INDEX.md").write_text("\n".join(lines) + "\n")
    return destination


def is_miniature(samples: Path) -> bool:
    return (Path(samples) / MARKER).is_file()


def requested_samples() -> Path | None:
    """The samples folder the environment asks for: a path, or None for the miniatures."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() in MINIATURE_WORDS:
        return None
    if value:
        return Path(value)
    shared = default_shared()
    return shared if shared_available(shared) else None


@functools.cache
def _scratch_miniatures() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="covid19-images-miniature-"))
    atexit.register(shutil.rmtree, folder, True)
    return materialize_miniatures(folder / "upstream")


def sample_root() -> Path:
    """The folder to read upstream samples from: the requested one, else the miniatures (copied
    once per process into a temporary folder removed at exit)."""
    requested = requested_samples()
    return requested if requested is not None else _scratch_miniatures()


__all__ = [
    "ENV_VAR",
    "catalog_dir",
    "is_miniature",
    "materialize_miniatures",
    "miniature_dir",
    "requested_samples",
    "sample_root",
]
