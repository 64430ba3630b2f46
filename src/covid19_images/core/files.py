"""File-name rules every source needs: which names are images, which are zip debris, which copy to keep.

Upstreams are zips unpacked by hand and re-uploaded, so the same quirks recur: macOS
resource forks (``__MACOSX/``, ``._name``) next to the real files, and a second copy of a
dataset's folders nested inside the first. The rules live here once; a parser that needs
a narrower set of suffixes passes its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from pathlib import PurePosixPath

#: Suffixes of the raster image files upstreams publish (compared lower-case).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
#: The suffixes of the X-ray collections that publish only JPEG and PNG.
JPEG_PNG_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
#: The folder macOS's zip tool adds for resource forks.
MACOS_FOLDER = "__MACOSX"


def is_macos_debris(relative: str) -> bool:
    """True for macOS zip debris: anything under ``__MACOSX/`` and AppleDouble ``._name`` files.

    Args:
        relative: a posix path relative to the source folder.
    """
    if not _plain(relative):
        path = PurePosixPath(relative)
        return MACOS_FOLDER in path.parts or path.name.startswith("._")
    return relative.rpartition("/")[2].startswith("._") or MACOS_FOLDER in relative.split("/")


def is_image_name(relative: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> bool:
    """True when ``relative`` names an image by its suffix (any case) and is not macOS debris.

    The name only decides which files a parser looks at; the builder still detects the real
    format from the bytes.

    Args:
        relative: a posix path relative to the source folder.
        suffixes: the accepted suffixes, lower-case with the dot.
    """
    if not _plain(relative):
        return PurePosixPath(relative).suffix.lower() in suffixes and not is_macos_debris(relative)
    name = relative.rpartition("/")[2]
    dot = name.rfind(".")
    suffix = name[dot:] if 0 < dot < len(name) - 1 else ""
    return suffix.lower() in suffixes and not is_macos_debris(relative)


def _plain(relative: str) -> bool:
    """True for a path ``PurePosixPath`` would not normalise (no empty or ``.`` part): string rules
    give its answer at a fraction of the cost, which counts for a parser going over 100,000 names."""
    return (
        bool(relative)
        and "//" not in relative
        and not relative.endswith(("/", "/."))
        and "/./" not in relative
        and not relative.startswith("./")
        and relative != "."
    )


def largest_copy(copies: Mapping[str, Sized]) -> str:
    """The copy to index when a dataset's folders appear more than once: the one with most files.

    Ties go to the shallowest folder, then the shortest name, then the first in sort order,
    so the choice does not depend on listing order.

    Args:
        copies: folder (posix, ``""`` for the source root) -> the files found under it.
    """
    if not copies:
        raise ValueError("largest_copy needs at least one copy")
    return min(sorted(copies), key=lambda folder: (-len(copies[folder]), folder.count("/"), len(folder)))
