"""The checks behind the loader options: each takes ``(value, option name)`` and returns the
normalised value or raises TypeError/ValueError naming the option and the accepted values.

They are referenced by the declaration in :mod:`covid19_images.loaders._options`.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from covid19_images.core.schema import LABELS, SPLITS
from covid19_images.core.vocab import VIEW_VOCABULARY, harmonise_view

#: Largest image side accepted for ``image_size``.
MAX_IMAGE_SIDE = 16384


def whole_number(value: Any, name: str) -> int:
    """An integer, numpy integers included; bools, strings and non-integral floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
            return int(value)
        raise TypeError(f"{name} must be a whole number, not {type(value).__name__} {value!r}")
    return int(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {type(value).__name__} {value!r}")
    return value


def _names(value: Any, name: str) -> tuple[str, ...] | None:
    """One name or any iterable of names; a bare string is one name, not its letters."""
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a string or a list of strings, not {type(value).__name__}") from None
    for item in names:
        if not isinstance(item, str):
            raise TypeError(f"{name} must contain strings, got {item!r}")
    return names


def _split(value: Any, name: str) -> str | None:
    if value is not None and value not in SPLITS:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(SPLITS)} or None for all rows")
    return value


def _scheme(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string such as 'default', 'official', 'loso:<source>'")
    return value


def image_size_tuple(value: Any, name: str = "image_size") -> tuple[int, int] | None:
    """``224`` -> ``(224, 224)``; ``(h, w)`` kept; None keeps each image's own size."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or a (height, width) pair of ints, not the string {value!r}")
    if isinstance(value, Iterable):
        parts = tuple(value)
        if len(parts) != 2:
            raise ValueError(f"{name} must be (height, width), got {value!r}")
        size = (whole_number(parts[0], name), whole_number(parts[1], name))
    else:
        side = whole_number(value, name)
        size = (side, side)
    if min(size) < 1 or max(size) > MAX_IMAGE_SIDE:
        raise ValueError(f"{name} {value!r} is out of range (1..{MAX_IMAGE_SIDE})")
    return size


def _channels(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be the int 1 (grayscale) or 3 (RGB), not {type(value).__name__} {value!r}")
    if int(value) not in (1, 3):
        raise ValueError(f"{name} must be 1 (grayscale) or 3 (RGB), not {value!r}")
    return int(value)


def _labels(value: Any, name: str) -> tuple[str, ...] | None:
    names = _names(value, name)
    if names == ("all",):
        return LABELS
    for label in names or ():
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r}; labels are {', '.join(LABELS)} (or 'all')")
    return names


def _views(value: Any, name: str) -> tuple[str, ...] | None:
    """Views as the manifest spells them; a near miss (``"pa"``, ``"L"``) is named with the right one."""
    names = _names(value, name)
    for view in names or ():
        if view not in VIEW_VOCABULARY:
            meant = harmonise_view(view)
            hint = f" (did you mean {meant!r}?)" if meant != "unknown" else ""
            raise ValueError(f"unknown view {view!r}{hint}; views are {', '.join(VIEW_VOCABULARY)}")
    return names


def _classes(value: Any, name: str) -> tuple[str, ...] | None:
    names = _names(value, name)
    if names is None:
        return None
    if not names or len(set(names)) != len(names):
        raise ValueError(f"{name} must be a non-empty list without repeats, got {list(names)}")
    for label in names:
        if label not in LABELS:
            raise ValueError(f"unknown class {label!r}; labels are {', '.join(LABELS)}")
    return names


def _video_frames(value: Any, name: str) -> str | int:
    if value in ("middle", "all") and isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1:
        return int(value)
    raise ValueError(f"{name} must be 'middle', 'all' or a stride >= 1, not {value!r}")


def _name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string, not {type(value).__name__} {value!r}")
    return value


def _optional_name(value: Any, name: str) -> str | None:
    return None if value is None else _name(value, name)


def _checked_with_the_others(value: Any, name: str) -> Any:
    """Checked in :func:`make_options` together with the options it depends on."""
    return value


def _shards(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be an export folder or a shard URL pattern, not {type(value).__name__}")
    if not os.fspath(value).strip():  # "" would read the working directory as an export
        raise ValueError(f"{name} is empty: give an export folder or a shard URL pattern")
    return os.fspath(value)


def _augment(value: Any, name: str) -> Any:
    if value is None or value == "light" or callable(value):
        return value
    raise ValueError(f"{name} must be None, 'light' or a callable, not {value!r}")


def _splits(value: Any, name: str) -> tuple[str, ...]:
    names = _names(value, name) or ()
    for split in names:
        _split(split, name)
    return names


def _buffer(value: Any, name: str) -> int | None:
    if value is None:
        return None
    size = whole_number(value, name)
    if size < 0:
        raise ValueError(f"{name} must be >= 0 or None, not {value!r}")
    return size


def _equalize(value: Any, name: str) -> str | None:
    if value not in (None, "pad", "drop"):
        raise ValueError(f"{name} must be None, 'pad' or 'drop', not {value!r}")
    return value


def _directory(value: Any, name: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, not {type(value).__name__}")
    return Path(value).resolve()
