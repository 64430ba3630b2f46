"""The one declaration of the loader options: names, accepted types, defaults, checks and docs.

Every option the three public loaders share is a field of :class:`Options` declared with
:func:`option`. From those fields come the validation (:func:`make_options`), the defaults,
the docs appended to ``load_covid_xray``/``ct``/``ultrasound`` (:func:`options_doc`), and the
test that holds the loaders' explicit signatures to this declaration
(``tests/loaders/test_loader_signatures.py``). Framework-specific options (torch ``transform``, tf
``batch_size``, fastai ``bs``, ...) are declared once too: by the signature and docstring of
each adapter's factory, registered by name in :mod:`covid19_images.loaders.adapters`.

Validating before any framework is imported means a typo (``lables=``, ``split="valid"``,
``channels=4``) fails in milliseconds with a message naming the valid choices, instead of
after TensorFlow has spent seconds importing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from covid19_images.core.schema import LABELS, MODALITIES
from covid19_images.loaders._checks import (
    MAX_IMAGE_SIDE,  # noqa: F401 - part of the options' public surface
    _augment,
    _buffer,
    _channels,
    _checked_with_the_others,
    _classes,
    _directory,
    _equalize,
    _flag,
    _labels,
    _name,
    _names,
    _optional_name,
    _scheme,
    _shards,
    _split,
    _splits,
    _video_frames,
    _views,
    image_size_tuple,
    whole_number,
)
from covid19_images.loaders._task_options import validate, validate_vocabulary, validate_volume_options

#: labels served when the caller does not choose: every label that says something.
#: ``unknown`` (blank, "todo", inconclusive findings) is not a class: serving it as one
#: would teach a model to recognise a source's bookkeeping, not a disease.
KNOWN_LABELS: tuple[str, ...] = tuple(label for label in LABELS if label != "unknown")

#: ``video_frames`` default: every 10th frame, about 3 frames per second of a 30 fps clip
#: (the sampling POCOVID-Net used), so a long clip does not outweigh a hundred still images.
DEFAULT_VIDEO_STRIDE = 10

Check = Callable[[Any, str], Any]


def option(default: Any, accepts: str, doc: str, check: Check, *, modalities: tuple[str, ...] = MODALITIES) -> Any:
    """Declare one loader option as a dataclass field.

    Args:
        default: the value a caller gets by leaving the option out (before ``check``).
        accepts: the accepted types as written in the loaders' signatures.
        doc: one paragraph for the loaders' docstrings.
        check: ``check(value, name)`` returns the normalised value or raises TypeError/ValueError.
        modalities: the loaders that take the option (``include_non_axial`` is CT only).
    """
    metadata = {"accepts": accepts, "doc": doc, "check": check, "modalities": modalities}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Options:
    """What to serve and how to preprocess it, validated; built by :func:`make_options`.

    ``modality`` and ``root`` are fixed by the loader called and by :func:`find_root`; every
    other field is a user option declared with :func:`option`.
    """

    modality: str
    root: Path
    split: str | None = option(
        "train",
        "str | None",
        '"train" (default), "val", "test", or None for every row; assigned by ``split_scheme``. fastai '
        "DataLoaders hold train and valid together and refuse ``split`` (test rows are in ``dls.test_items``).",
        _split,
    )
    split_scheme: str = option(
        "default",
        "str",
        '"default" (stable patient-level 80/10/10), "official" (the upstream\'s own), "loso:<source>" '
        '(leave one source out), "covidx[:<version>]" (COVIDx\'s lists applied to the images held).',
        _scheme,
    )
    image_size: tuple[int, int] | None = option(
        224,
        "int | tuple[int, int] | None",
        "int or (height, width): every image is squashed to exactly that size (no crop, so lung apices and "
        "costophrenic angles stay in the picture). None keeps each image's own size (not batchable).",
        image_size_tuple,
    )
    channels: int = option(3, "int", "3 (gray replicated; what ImageNet-pretrained models expect) or 1.", _channels)
    labels: tuple[str, ...] | None = option(
        None,
        "str | Iterable[str] | None",
        "labels to serve; default every known label (covid-19, pneumonia, normal, other), never ``unknown`` "
        'unless asked; "all" includes unknown.',
        _labels,
    )
    sources: tuple[str, ...] | None = option(
        None, "str | Iterable[str] | None", "only these sources (registry names).", _names
    )
    views: tuple[str, ...] | None = option(
        None,
        "str | Iterable[str] | None",
        'only these views ("PA", "AP", "AP supine", "lateral", "axial", "convex", ...; manifests/README.md).',
        _views,
    )
    licenses: tuple[str, ...] | None = option(
        None, "str | Iterable[str] | None", "only these licence ids (manifest ``license`` column).", _names
    )
    classes: tuple[str, ...] | None = option(
        None,
        "Iterable[str] | None",
        "fixed class order (label -> index); default: the sorted labels present after filtering, computed "
        "across all splits so train/val/test agree.",
        _classes,
    )
    deduplicate: bool = option(
        True,
        "bool",
        "serve one image per duplicate group (the first by image_id); with volumes, drop a volume whose every "
        "slice is a duplicate of slices of another served volume (listed in ``duplicates``).",
        _flag,
    )
    include_augmented: bool = option(
        False, "bool", "serve the augmented copies some upstreams ship (Darshan's TrainData).", _flag
    )
    include_non_axial: bool = option(
        False, "bool", "serve CT localizers and reformatted series too.", _flag, modalities=("ct",)
    )
    video_frames: str | int = option(
        DEFAULT_VIDEO_STRIDE,
        "str | int",
        'frames of videos and animated images: a stride (default 10), "middle" or "all". Volumes serve every slice.',
        _video_frames,
    )
    cache: bool = option(
        False,
        "bool",
        "decode and resize once into a file under ``cache_dir`` keyed by content hashes and settings "
        "(needs a fixed ``image_size``).",
        _flag,
    )
    cache_dir: Path | None = option(
        None, "str | os.PathLike | None", "where the cache lives; default ``<root>/.cache/covid19-images``.", _directory
    )
    check_files: bool = option(
        True,
        "bool",
        "stat every file at construction and fail with the fetch command when a source is not checked out.",
        _flag,
    )
    version: str | None = option(
        None,
        "str | None",
        'a release of the root (its tag, e.g. "2026.12"): serve the rows, labels and splits that release tagged, '
        "read from git; refused, with the commands to run, unless every source served is checked out at the "
        "commit the release pins (``covid19-images status --version``).",
        _optional_name,
    )
    only_fetched: bool = option(
        False,
        "bool",
        "serve the images of portal sources that are fetched here and leave out the others (with a warning "
        "per source); by default a selection holding unfetched portal images is refused with the fetch command.",
        _flag,
    )

    # streaming over exported shards, ids, augmentation (loaders.torch.streaming, loaders.augment)
    shards: str | None = option(
        None,
        "str | os.PathLike | None",
        "stream a ``covid19-images export`` instead of the manifest: its folder or a shard URL pattern "
        "(webdataset for torch, tfrecord for tf); split by torch.distributed rank and DataLoader worker.",
        _shards,
    )
    with_id: bool = option(
        False, "bool", "also return each item's ``image_id``, so predictions trace back to files.", _flag
    )
    augment: Any = option(
        None,
        "str | Callable | None",
        'None, "light" (rotation <= 7 degrees, scale, shift, brightness/contrast; no flips) or a callable, from '
        "the framework's own transforms; masks and boxes follow the image (loaders.augment).",
        _augment,
    )
    augment_splits: tuple[str, ...] = option(
        ("train",), "str | Iterable[str]", "the splits whose items are augmented; others never are.", _splits
    )
    seed: int = option(
        0,
        "int",
        "seed of every random draw (augmentation, shuffles, shard order); with the epoch (``set_epoch``) it fixes "
        "them all, whatever the number of workers.",
        whole_number,
    )
    shuffle_buffer: int | None = option(
        None, "int | None", "streaming: samples in the shuffle buffer (0: none); None: 1000 for train, else 0.", _buffer
    )
    equalize: str | None = option(
        None,
        "str | None",
        'streaming under DDP: None (every sample exactly once), "pad" or "drop" (the same number of steps on '
        "every rank, from the export's shard counts).",
        _equalize,
    )
    # annotations (loaders.tasks) and volumes (loaders.volumes); cross-checked in make_options
    task: str = option(
        "classification",
        "str",
        '"classification" (image, label), "segmentation" (image, mask), "severity" (image, float score), '
        '"detection" (image, boxes: torchvision BoundingBoxes XYXY, tf {"boxes", "labels"} xyxy pixels, fastai '
        "TensorBBox). Only images that have the annotation are served (loaders.tasks).",
        _name,
    )
    mask_source: str | None = option(
        None,
        "str | None",
        'segmentation masks: "v7labs" (X-ray lungs, default for X-ray), "lungvae" (X-ray lungs, model-made), '
        '"medseg" (CT lesions: 1 ground-glass, 2 consolidation, 3 pleural effusion).',
        _optional_name,
    )
    score: str | None = option(
        None,
        "str | None",
        'severity score (loaders.tasks.SEVERITY_SCORES): default "brixia_global" (0-18); "brixia_A".."brixia_F", '
        '"geographic_extent_mean", "opacity_mean".',
        _optional_name,
    )
    rater: str | None = option(
        None,
        "str | None",
        'severity rater: Brixia "senior" (default), "junior" or "mean"; ieee8023 scores "mean_of_3".',
        _optional_name,
    )
    target: str = option(
        "label",
        "str",
        '"label" (class index) or "multilabel" (multi-hot float vector over ``vocabulary``; its class order is the '
        "dataset's ``target_classes``). Only items rated on the vocabulary are served (loaders.tasks).",
        _name,
    )
    vocabulary: str | None = option(
        None,
        "str | None",
        'with target="multilabel": "findings" (X-ray and CT default: NIH ChestX-ray14 findings and ieee8023 '
        'pathogens, from the finding strings), "siim" (X-ray: SIIM-FISABIO-RSNA negative_for_pneumonia, '
        'typical/indeterminate/atypical_appearance, opacity), "stoic" (CT: STOIC2021 covid19, severe), '
        '"pocus" (ultrasound default: the POCUS sheet\'s rated findings). Fixed order: loaders.tasks.VOCABULARIES.',
        _optional_name,
    )
    volumes: bool = option(
        False,
        "bool",
        "one item per DICOM series or NIfTI volume as a 3-D array (slices ordered along the slice normal); torch "
        "[1, z, y, x], tf [z, y, x, 1], fastai DataLoaders of torch's (needs volume_size) (loaders.volumes).",
        _flag,
        modalities=("ct",),
    )
    spacing: tuple[float, float, float] | None = option(
        None,
        "float | Sequence[float] | None",
        "with volumes: resample to this voxel spacing (z, y, x) in mm; None keeps each volume's own.",
        _checked_with_the_others,
        modalities=("ct",),
    )
    volume_size: tuple[int, int, int] | None = option(
        None,
        "int | Sequence[int] | None",
        "with volumes: resample to exactly this shape (z, y, x); exclusive with spacing.",
        _checked_with_the_others,
        modalities=("ct",),
    )
    monai_dict: bool = option(
        False,
        "bool",
        'with volumes: serve MONAI-style dicts {"image", "label", "mask", "meta"} so MONAI transforms apply.',
        _flag,
        modalities=("ct",),
    )

    @property
    def cache_directory(self) -> Path:
        """The cache folder in use: ``cache_dir`` or ``<root>/.cache/covid19-images``."""
        return self.cache_dir if self.cache_dir is not None else self.root / ".cache" / "covid19-images"


def user_options(modality: str | None = None) -> list[Any]:
    """The declared user options (dataclass fields), in declaration order, for ``modality`` or all."""
    return [
        f
        for f in fields(Options)
        if "check" in f.metadata and (modality is None or modality in f.metadata["modalities"])
    ]


def options_doc(modality: str | None = None) -> str:
    """The options section of a loader docstring, rendered from the declaration."""
    lines = ["Options (validated before any framework is imported):", ""]
    for f in user_options(modality):
        lines.append(f"* ``{f.name}`` ({f.metadata['accepts']}, default ``{f.default!r}``): {f.metadata['doc']}")
    return "\n".join(lines)


def make_options(modality: str, *, root: str | os.PathLike | None = None, **given: Any) -> Options:
    """Validate and normalise ``given`` for the ``modality`` loader.

    Args:
        modality: "xray", "ct" or "ultrasound".
        root: the data root (see :func:`covid19_images.core.paths.find_root`).
        **given: user options by name; unknown names and options of another modality are refused.
    """
    from covid19_images.core.paths import find_root

    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    declared = {f.name: f for f in user_options(modality)}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)} for {modality}; options: {', '.join(declared)}")
    values = {name: f.metadata["check"](given.get(name, f.default), name) for name, f in declared.items()}
    options = Options(modality=modality, root=find_root(root), **values)
    if options.classes is not None and options.labels is not None and not set(options.labels) <= set(options.classes):
        extra = sorted(set(options.labels) - set(options.classes))
        raise ValueError(f"labels {extra} are not in classes {list(options.classes)}: give them an index or drop them")
    if options.cache and options.image_size is None:
        raise ValueError("cache=True needs a fixed image_size: the cache stores resized pixels")
    return _check_tasks_and_volumes(options)


def _check_tasks_and_volumes(options: Options) -> Options:
    """The task and volume options depend on each other and on the modality: check them together."""
    o = options
    mask_source, score, rater = validate(o.task, o.mask_source, o.score, o.rater, o.target, o.modality)
    vocabulary = validate_vocabulary(o.target, o.vocabulary, o.modality)
    spacing, size = validate_volume_options(o.modality, o.task, o.volumes, o.spacing, o.volume_size, o.monai_dict)
    return replace(
        o, mask_source=mask_source, score=score, rater=rater, vocabulary=vocabulary, spacing=spacing, volume_size=size
    )


def with_split(options: Options, split: str | None) -> Options:
    """``options`` for another split (fastai builds train and valid from one set of options)."""
    return replace(options, split=_split(split, "split"))
