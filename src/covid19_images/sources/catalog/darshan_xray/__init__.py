"""Darshan Deshpande's COVID-19 detection X-ray set (Kaggle, re-uploaded by coyotespike).

No metadata: ``covid19-detection-xray-dataset/<set>/<class>/<n>.jpeg``, where the label is the
immediate parent folder (``BacterialPneumonia``, ``COVID-19``, ``Normal``, ``ViralPneumonia``)
and ``<set>`` is the second path component:

* ``NonAugmentedTrain``: the training pictures, resized to 400x300 and renamed to numbers.
* ``TrainData``: the same classes with the same counts, written by an augmentation generator
  (Keras-style ``_<index>_<random>.jpeg`` names); every file is an augmented copy of a
  ``NonAugmentedTrain`` picture, so all of them are marked ``augmented``. The extra level
  ``TrainData/OversampledAugmentedCOVID-19/COVID-19/`` holds more augmented COVID-19 copies
  made to oversample that class (marked ``oversampled`` as well).
* ``ValData``: validation pictures, renamed to numbers but not resized (full-size RGB).

Both upstream sets map to ``official_split`` (``train`` / ``val``) and the raw folder is kept
in ``extra["darshan_set"]``. The pictures come from ieee8023 and Zhang Lab with their patient
ids stripped, and augmented copies cannot be linked back to their original by name, so
``patient_id`` stays empty (the builder groups by file); de-duplication against the original
sources has to work on pixels. Set option ``include_augmented: false`` to leave the
augmented copies out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.files import JPEG_PNG_SUFFIXES, is_image_name
from covid19_images.core.schema import Entry
from covid19_images.core.vocab import harmonise_finding
from covid19_images.sources.parsing import SourceContext

SETS: dict[str, tuple[str, bool]] = {
    # upstream folder -> (official split, augmented)
    "NonAugmentedTrain": ("train", False),
    "TrainData": ("train", True),
    "ValData": ("val", False),
}
OVERSAMPLED = "OversampledAugmentedCOVID-19"


def _set_folder(parts: tuple[str, ...]) -> str:
    """The known set folder among the parent folders (normally the second component), or ``""``."""
    for part in parts[:-2]:
        if part in SETS:
            return part
    return ""


def _augment_index(name: str) -> str:
    pieces = PurePosixPath(name).stem.split("_")
    return pieces[1] if len(pieces) == 3 and not pieces[0] and pieces[1].isdigit() else ""


def _entry(ctx: SourceContext, relative: str, include_augmented: bool) -> Iterator[Entry]:
    parts = PurePosixPath(relative).parts
    set_folder = _set_folder(parts)
    if not set_folder:
        ctx.report("image outside NonAugmentedTrain/TrainData/ValData; skipped", path=relative, row=relative)
        return
    klass = parts[-2]
    label, detail, known = harmonise_finding(klass)
    if not known or label == "unknown":
        ctx.report(f"unknown class folder {klass!r}; skipped", path=relative, row=relative)
        return
    split, augmented = SETS[set_folder]
    if augmented and not include_augmented:
        return
    extra: dict[str, object] = {"darshan_set": set_folder, "augmented": augmented}
    if OVERSAMPLED in parts:
        extra["oversampled"] = True
    index = _augment_index(parts[-1])
    if augmented and index:
        extra["augment_index"] = int(index)
    yield Entry(
        path=relative,
        modality="xray",
        finding=klass,
        label=label,
        label_detail=detail,
        official_split=split,
        row=relative,
        extra=extra,
    )


#: registry options and their types (checked when the registry loads: a quoted "false" is refused)
OPTIONS = {"include_augmented": bool}


def parse(ctx: SourceContext) -> Iterator[Entry]:
    include_augmented = ctx.option("include_augmented", True) is True
    images = [f for f in ctx.files if is_image_name(f, JPEG_PNG_SUFFIXES)]
    if not images:
        ctx.report("no images in checkout; nothing to index", level="error")
        return
    for relative in images:
        yield from _entry(ctx, relative, include_augmented)
