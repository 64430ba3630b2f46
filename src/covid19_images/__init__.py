"""covid19-images: public COVID-19 lung-imaging datasets as one leak-free, citable collection.

Importing this package imports no deep-learning framework; each loader imports its
framework only when asked for it.

A positive scan can suggest COVID-19; a negative scan means nothing. Research use only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from covid19_images.core.medical import MEDICAL_WARNING

__version__ = "0.1.0"


def load_manifest(root: str | os.PathLike | None = None, *, version: str | None = None) -> pd.DataFrame:
    """The unified manifest as a pandas DataFrame (manifests/README.md documents the columns).

    Args:
        root: the data root; the rule is below.
        version: a release of the root (e.g. ``"2026.12"``): the manifest as that tag holds it, read
            from git (no checkout needed to read it; serving its images needs the pinned checkouts).
    """
    from covid19_images.loaders import load_manifest as _load_manifest

    return _load_manifest(root, version=version)


def load_covid_xray(
    framework: str = "torch",
    *,
    root: str | os.PathLike | None = None,
    split: str | None = "train",
    split_scheme: str = "default",
    image_size: int | tuple[int, int] | None = 224,
    channels: int = 3,
    labels: str | Iterable[str] | None = None,
    sources: str | Iterable[str] | None = None,
    views: str | Iterable[str] | None = None,
    licenses: str | Iterable[str] | None = None,
    classes: Iterable[str] | None = None,
    deduplicate: bool = True,
    include_augmented: bool = False,
    video_frames: str | int = 10,
    cache: bool = False,
    cache_dir: str | os.PathLike | None = None,
    check_files: bool = True,
    version: str | None = None,
    only_fetched: bool = False,
    shards: str | os.PathLike | None = None,
    with_id: bool = False,
    augment: str | Callable | None = None,
    augment_splits: str | Iterable[str] = ("train",),
    seed: int = 0,
    shuffle_buffer: int | None = None,
    equalize: str | None = None,
    task: str = "classification",
    mask_source: str | None = None,
    score: str | None = None,
    rater: str | None = None,
    target: str = "label",
    vocabulary: str | None = None,
    **framework_options: Any,
) -> Any:
    """Chest X-rays as a native dataset of ``framework`` ("torch", "tf" or "fastai").

    ``framework_options`` go to the framework's adapter: torch ``transform``,
    ``target_transform``, ``dtype``; tf ``batch_size``, ``shuffle``, ``seed``, ``prefetch``;
    fastai ``bs``, ``item_tfms``, ``batch_tfms``, ``num_workers``, ``shuffle``, ``device``.
    """
    return _load("xray", framework, locals())


def load_covid_ct(
    framework: str = "torch",
    *,
    root: str | os.PathLike | None = None,
    split: str | None = "train",
    split_scheme: str = "default",
    image_size: int | tuple[int, int] | None = 224,
    channels: int = 3,
    labels: str | Iterable[str] | None = None,
    sources: str | Iterable[str] | None = None,
    views: str | Iterable[str] | None = None,
    licenses: str | Iterable[str] | None = None,
    classes: Iterable[str] | None = None,
    deduplicate: bool = True,
    include_augmented: bool = False,
    include_non_axial: bool = False,
    video_frames: str | int = 10,
    cache: bool = False,
    cache_dir: str | os.PathLike | None = None,
    check_files: bool = True,
    version: str | None = None,
    only_fetched: bool = False,
    shards: str | os.PathLike | None = None,
    with_id: bool = False,
    augment: str | Callable | None = None,
    augment_splits: str | Iterable[str] = ("train",),
    seed: int = 0,
    shuffle_buffer: int | None = None,
    equalize: str | None = None,
    task: str = "classification",
    mask_source: str | None = None,
    score: str | None = None,
    rater: str | None = None,
    target: str = "label",
    vocabulary: str | None = None,
    volumes: bool = False,
    spacing: float | Sequence[float] | None = None,
    volume_size: int | Sequence[int] | None = None,
    monai_dict: bool = False,
    **framework_options: Any,
) -> Any:
    """CT slices (DICOM instances, NIfTI volumes served slice by slice, 2-D CT images from papers).

    ``volumes=True`` serves one 3-D item per DICOM series or NIfTI volume instead (see
    :mod:`covid19_images.loaders.volumes`).

    ``framework_options`` as for :func:`load_covid_xray`.
    """
    return _load("ct", framework, locals())


def load_covid_ultrasound(
    framework: str = "torch",
    *,
    root: str | os.PathLike | None = None,
    split: str | None = "train",
    split_scheme: str = "default",
    image_size: int | tuple[int, int] | None = 224,
    channels: int = 3,
    labels: str | Iterable[str] | None = None,
    sources: str | Iterable[str] | None = None,
    views: str | Iterable[str] | None = None,
    licenses: str | Iterable[str] | None = None,
    classes: Iterable[str] | None = None,
    deduplicate: bool = True,
    include_augmented: bool = False,
    video_frames: str | int = 10,
    cache: bool = False,
    cache_dir: str | os.PathLike | None = None,
    check_files: bool = True,
    version: str | None = None,
    only_fetched: bool = False,
    shards: str | os.PathLike | None = None,
    with_id: bool = False,
    augment: str | Callable | None = None,
    augment_splits: str | Iterable[str] = ("train",),
    seed: int = 0,
    shuffle_buffer: int | None = None,
    equalize: str | None = None,
    task: str = "classification",
    mask_source: str | None = None,
    score: str | None = None,
    rater: str | None = None,
    target: str = "label",
    vocabulary: str | None = None,
    **framework_options: Any,
) -> Any:
    """Lung ultrasound images and video frames (``video_frames`` chooses which frames).

    ``framework_options`` as for :func:`load_covid_xray`.
    """
    return _load("ultrasound", framework, locals())


def _load(modality: str, framework: str, arguments: dict[str, Any]) -> Any:
    """Forward a public loader's arguments (its ``locals()``) to :func:`covid19_images.loaders.load`."""
    from covid19_images.loaders import load

    options = {k: v for k, v in arguments.items() if k not in ("framework", "framework_options")}
    return load(modality, framework, **options, **arguments["framework_options"])


ROOT_DOC = """root: the data root (a folder holding ``sources.yaml`` and ``manifests/``). When omitted,
the same rule as the command line's ``--root`` and the notebooks:

1. ``$COVID19_IMAGES_ROOT``;
2. else the nearest folder at or above the current directory holding ``sources.yaml``
   (a clone of this project, from any folder inside it), else the clone holding the
   installed package;
3. a clone with no data yet (no ``manifests/manifest.csv``, no source checked out under
   ``datasets/``) uses the root its last ``make demo`` built, named in ``build/demo-root``
   (a notice on stderr says so): after ``make demo`` everything runs on the demo's data;
4. else the current directory (loading then says what to run)."""


def _append_options_doc() -> None:
    """Append the root rule and the declared options to each public loader's docstring (one
    declaration, one doc)."""
    from covid19_images.loaders._options import options_doc

    for function, modality in ((load_covid_xray, "xray"), (load_covid_ct, "ct"), (load_covid_ultrasound, "ultrasound")):
        function.__doc__ = f"{function.__doc__}\n\n{ROOT_DOC}\n\n{options_doc(modality)}\n"
    load_manifest.__doc__ = f"{load_manifest.__doc__}\n{ROOT_DOC}\n"


_append_options_doc()


__all__ = [
    "MEDICAL_WARNING",
    "__version__",
    "load_covid_ct",
    "load_covid_ultrasound",
    "load_covid_xray",
    "load_manifest",
]
