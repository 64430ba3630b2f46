"""The options every framework adapter shares, validated once before any framework is imported.

Validating first means a typo (``lables=``, ``split="valid"``, ``channels=4``) fails in
milliseconds with a message naming the valid choices, instead of after TensorFlow has
spent seconds importing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from covid19_images.core.schema import LABELS, MODALITIES, SPLITS

#: labels served when the caller does not choose: every label that says something.
#: ``unknown`` (blank, "todo", inconclusive findings) is not a class: serving it as one
#: would teach a model to recognise a source's bookkeeping, not a disease.
KNOWN_LABELS: tuple[str, ...] = tuple(label for label in LABELS if label != "unknown")

#: ``video_frames`` default: every 10th frame, about 3 frames per second of a 30 fps clip
#: (the sampling POCOVID-Net used), so a long clip does not outweigh a hundred still images.
DEFAULT_VIDEO_STRIDE = 10


@dataclass(frozen=True)
class Options:
    """What to serve and how to preprocess it; see :func:`covid19_images.loaders.load`."""

    modality: str
    root: Path
    split: str | None = "train"
    split_scheme: str = "default"
    image_size: tuple[int, int] | None = (224, 224)
    channels: int = 3
    labels: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    views: tuple[str, ...] | None = None
    licenses: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    deduplicate: bool = True
    include_augmented: bool = False
    include_non_axial: bool = False
    video_frames: str | int = DEFAULT_VIDEO_STRIDE
    cache: bool = False
    cache_dir: Path | None = None
    check_files: bool = True
    # --- issue 12: streaming, ids, augmentation (begin) -----------------------------------
    #: WebDataset/TFRecord export folder, or a shard URL pattern (brace-expanded): stream it instead of the manifest
    shards: str | None = None
    #: also return each item's image_id (torch: (image, label, id); tf: a third element)
    with_id: bool = False
    #: None, "light" (chest-imaging preset) or a callable (image[, target]) -> augmented; see loaders.augment
    augment: object = None
    #: splits whose items are augmented (others never are)
    augment_splits: tuple[str, ...] = ("train",)
    #: seed of every random draw (augmentation, shuffle buffer, shard order); with the epoch it fixes them all
    seed: int = 0
    #: streaming: samples held in the shuffle buffer (0: no shuffling); None: 1000 for train, 0 otherwise
    shuffle_buffer: int | None = None
    #: streaming under DDP: None (every sample exactly once), "pad" or "drop" (same steps on every rank)
    equalize: str | None = None
    # --- issue 12 (end) ------------------------------------------------------------------

    @property
    def cache_directory(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.root / ".cache" / "covid19-images"


def _names(value: str | Iterable[str] | None, what: str) -> tuple[str, ...] | None:
    """Accept one name or any iterable of names; a bare string is one name, not its letters."""
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise TypeError(f"{what} must be a string or a list of strings, not {type(value).__name__}") from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{what} must contain strings, got {name!r}")
    return names


def image_size_tuple(value: int | Sequence[int] | None) -> tuple[int, int] | None:
    """``224`` -> ``(224, 224)``; ``(h, w)`` kept. Squashed to exactly that size (see docs)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("image_size must be an int or an (height, width) pair")
    if isinstance(value, int):
        size = (value, value)
    else:
        try:
            size = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise TypeError(f"image_size must be an int or an (height, width) pair, not {value!r}") from None
        if len(size) != 2:
            raise ValueError(f"image_size must be (height, width), got {value!r}")
    if min(size) < 1 or max(size) > 16384:
        raise ValueError(f"image_size {value!r} is out of range (1..16384)")
    return size  # type: ignore[return-value]


def make_options(
    modality: str,
    *,
    root: str | os.PathLike | None = None,
    split: str | None = "train",
    split_scheme: str = "default",
    image_size: int | Sequence[int] | None = 224,
    channels: int = 3,
    labels: str | Iterable[str] | None = None,
    sources: str | Iterable[str] | None = None,
    views: str | Iterable[str] | None = None,
    licenses: str | Iterable[str] | None = None,
    classes: Iterable[str] | None = None,
    deduplicate: bool = True,
    include_augmented: bool = False,
    include_non_axial: bool = False,
    video_frames: str | int = DEFAULT_VIDEO_STRIDE,
    cache: bool = False,
    cache_dir: str | os.PathLike | None = None,
    check_files: bool = True,
    # --- issue 12 (begin) ---
    shards: str | os.PathLike | None = None,
    with_id: bool = False,
    augment: object = None,
    augment_splits: str | Iterable[str] = ("train",),
    seed: int = 0,
    shuffle_buffer: int | None = None,
    equalize: str | None = None,
    # --- issue 12 (end) ---
) -> Options:
    from covid19_images.core.paths import find_root

    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)} or None for all rows")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels!r}")
    label_names = _names(labels, "labels")
    if label_names == ("all",):
        label_names = LABELS
    for name in label_names or ():
        if name not in LABELS:
            raise ValueError(f"unknown label {name!r}; labels are {', '.join(LABELS)} (or 'all')")
    class_names = _names(classes, "classes")
    if class_names is not None:
        if len(set(class_names)) != len(class_names) or not class_names:
            raise ValueError(f"classes must be a non-empty list without repeats, got {list(class_names)}")
        for name in class_names:
            if name not in LABELS:
                raise ValueError(f"unknown class {name!r}; labels are {', '.join(LABELS)}")
        if label_names is not None and not set(label_names) <= set(class_names):
            extra = sorted(set(label_names) - set(class_names))
            raise ValueError(f"labels {extra} are not in classes {list(class_names)}: give them an index or drop them")
    if isinstance(video_frames, bool) or not (
        video_frames in ("middle", "all") or (isinstance(video_frames, int) and video_frames >= 1)
    ):
        raise ValueError(f"video_frames must be 'middle', 'all' or a stride >= 1, not {video_frames!r}")
    size = image_size_tuple(image_size)
    if cache and size is None:
        raise ValueError("cache=True needs a fixed image_size: the cache stores resized pixels")
    # --- issue 12 (begin) ---
    if not (augment is None or augment == "light" or callable(augment)):
        raise ValueError(f"augment must be None, 'light' or a callable, not {augment!r}")
    augment_split_names = _names(augment_splits, "augment_splits") or ()
    for name in augment_split_names:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r} in augment_splits; choose from {', '.join(SPLITS)}")
    if equalize not in (None, "pad", "drop"):
        raise ValueError(f"equalize must be None, 'pad' or 'drop', not {equalize!r}")
    if shuffle_buffer is not None and (isinstance(shuffle_buffer, bool) or int(shuffle_buffer) < 0):
        raise ValueError(f"shuffle_buffer must be >= 0 or None, not {shuffle_buffer!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, not {seed!r}")
    # --- issue 12 (end) ---
    resolved = find_root(root)
    return Options(
        modality=modality,
        root=resolved,
        split=split,
        split_scheme=split_scheme,
        image_size=size,
        channels=channels,
        labels=label_names,
        sources=_names(sources, "sources"),
        views=_names(views, "views"),
        licenses=_names(licenses, "licenses"),
        classes=class_names,
        deduplicate=bool(deduplicate),
        include_augmented=bool(include_augmented),
        include_non_axial=bool(include_non_axial),
        video_frames=video_frames,
        cache=bool(cache),
        cache_dir=Path(cache_dir).resolve() if cache_dir is not None else None,
        check_files=bool(check_files),
        # --- issue 12 (begin) ---
        shards=os.fspath(shards) if shards is not None else None,
        with_id=bool(with_id),
        augment=augment,
        augment_splits=augment_split_names,
        seed=int(seed),
        shuffle_buffer=None if shuffle_buffer is None else int(shuffle_buffer),
        equalize=equalize,
        # --- issue 12 (end) ---
    )
