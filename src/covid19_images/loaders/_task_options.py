"""What the task and volume options may be: the tasks' vocabularies and the checks that tie them together.

Kept apart from :mod:`.tasks` and :mod:`.volumes` (which read annotations and pixels with
NumPy and pandas) so that :mod:`._options` can check every option at once without importing
them, and so that neither imports the options back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TASKS = ("classification", "segmentation", "severity", "detection")
TARGETS = ("label", "multilabel")
IGNORE_INDEX = 255


@dataclass(frozen=True)
class MaskSource:
    """One mask set: which annotation rows, and stored value -> class index."""

    source: str
    names: tuple[str, ...]
    classes: tuple[str, ...]
    values: dict[int, int]
    #: class index for stored values not in ``values``
    other: int = IGNORE_INDEX


MASK_SOURCES: dict[str, MaskSource] = {
    # V7 Labs: 0 background, 127 Ignore (devices, markup over the lungs), 255 Lung
    "v7labs": MaskSource("v7labs-lung-masks", ("lung",), ("background", "lung"), {0: 0, 127: IGNORE_INDEX, 255: 1}),
    # ieee8023 lungVAE (model-generated): 0 background, 255 lung
    "lungvae": MaskSource("ieee8023-covid-chestxray", ("lung",), ("background", "lung"), {0: 0, 255: 1}),
    # MedSeg (radiologist): 1 ground-glass, 2 consolidation, 3 pleural effusion
    "medseg": MaskSource(
        "medseg-ct",
        ("ground_glass", "consolidation", "pleural_effusion", "no_lesion"),
        ("background", "ground_glass", "consolidation", "pleural_effusion"),
        {0: 0, 1: 1, 2: 2, 3: 3},
    ),
    # MosMedData (issue 22): 1 = ground-glass opacification or consolidation, binary
    "mosmed": MaskSource("mosmeddata", ("lesion", "no_lesion"), ("background", "lesion"), {0: 0, 1: 1}),
    # Zenodo 3757476 (issue 22): Lung_Mask 1 left lung, 2 right lung; Infection_Mask 1 infection
    "ct-seg-lung": MaskSource(
        "covid19-ct-seg",
        ("left_lung", "right_lung", "no_lung"),
        ("background", "left_lung", "right_lung"),
        {0: 0, 1: 1, 2: 2},
    ),
    "ct-seg-infection": MaskSource(
        "covid19-ct-seg", ("infection", "no_infection"), ("background", "infection"), {0: 0, 1: 1}
    ),
    # COVID-QU-Ex: 0 background, 255 lung (every image) / 255 infection (the Infection set)
    "covid-qu-ex": MaskSource("covid-qu-ex", ("lung",), ("background", "lung"), {0: 0, 255: 1}),
    # MIDRC-RICORD-1a: MD.ai freeform outlines of infectious opacity, drawn filled (255) per slice
    "ricord-1a": MaskSource("midrc-ricord-1a", ("infectious_opacity",), ("background", "opacity"), {0: 0, 255: 1}),
    "covid-qu-ex-infection": MaskSource("covid-qu-ex", ("infection",), ("background", "infection"), {0: 0, 255: 1}),
}
DEFAULT_MASK_SOURCE = {"xray": "v7labs", "ct": "medseg"}

_BRIXIA_RATERS = ("senior", "junior", "mean")
#: score name -> (source, raters; the first is the default)
SEVERITY_SCORES: dict[str, tuple[str, tuple[str, ...]]] = {
    "brixia_global": ("brixia-score", _BRIXIA_RATERS),
    **{f"brixia_{zone}": ("brixia-score", _BRIXIA_RATERS) for zone in "ABCDEF"},
    "geographic_extent_mean": ("ieee8023-covid-chestxray", ("mean_of_3",)),
    "opacity_mean": ("ieee8023-covid-chestxray", ("mean_of_3",)),
    # MosMedData's CT-0..CT-4 (issue 22), one per study
    "mosmed_grade": ("mosmeddata", ("annotator",)),
}
#: box names served by task="detection": ieee8023's lung boxes, then the opacity boxes of RSNA and
#: SIIM-FISABIO-RSNA (appended, so the indices of the first classes never change)
BOX_CLASSES = ("background", "right_lung", "left_lung", "lung_opacity")

#: NIH ChestX-ray14's 14 findings, then ieee8023's pathogens and syndromes
MULTILABEL_VOCABULARY: tuple[str, ...] = (
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Emphysema", "Fibrosis",
    "Hernia", "Infiltration", "Mass", "Nodule", "Pleural_Thickening", "Pneumonia", "Pneumothorax",
    "COVID-19", "SARS", "MERS", "ARDS", "Influenza", "Varicella", "Viral", "Bacterial", "Fungal",
    "Streptococcus", "Klebsiella", "Mycoplasma", "Legionella", "Chlamydophila", "E.Coli",
    "Staphylococcus", "Pneumocystis", "Tuberculosis", "Lipoid", "Aspiration",
)  # fmt: skip
#: ultrasound multi-label vocabulary: the POCUS sheet's rated findings (annotations, kind "finding")
ULTRASOUND_VOCABULARY: tuple[str, ...] = (
    "b_lines", "a_lines", "consolidation", "pleural_effusion", "pleural_line_irregularities", "air_bronchogram",
    "healthy",
)  # fmt: skip


@dataclass(frozen=True)
class FindingVocabulary:
    """A multi-label vocabulary read from ``annotations.csv``: one source's ``finding`` rows, in class order.

    ``names`` are the annotation names in the order of the multi-hot vector (fixed: never re-sorted,
    new names only appended). Each finding is a 0/1 the source stated; a vocabulary never adds a
    "normal" or "negative" class the source did not state. With ``complete`` an item is served only
    when every name is rated on it; without, an unrated name counts as 0 (POCUS rates a clip on the
    columns it fills).
    """

    source: str
    modality: str
    names: tuple[str, ...]
    what: str  # for messages: what the findings are
    complete: bool = True


SIIM_NAMES = (
    "negative_for_pneumonia", "typical_appearance", "indeterminate_appearance", "atypical_appearance", "opacity",
)  # fmt: skip
#: ``vocabulary=`` -> how ``target="multilabel"`` reads it. ``findings`` is not here: it reads the
#: manifest's raw finding strings over :data:`MULTILABEL_VOCABULARY` (X-ray and CT).
FINDING_VOCABULARIES: dict[str, FindingVocabulary] = {
    # SIIM-FISABIO-RSNA: the study's class (one of four, radiologists' read; "negative for pneumonia" is
    # their stated class, not an absence) and whether the image has opacity boxes (train_image_level.csv)
    "siim": FindingVocabulary(
        "siim-covid19-detection",
        "xray",
        SIIM_NAMES,
        "SIIM-FISABIO-RSNA study classes and image opacity",
    ),
    # STOIC2021: RT-PCR result and severe outcome (death or intubation at one month), per volume
    "stoic": FindingVocabulary("stoic2021", "ct", ("covid19", "severe"), "STOIC2021 RT-PCR and severe outcome"),
    "pocus": FindingVocabulary("pocus-ultrasound", "ultrasound", ULTRASOUND_VOCABULARY, "rated POCUS findings", False),
}
VOCABULARIES = ("findings", *FINDING_VOCABULARIES)
DEFAULT_VOCABULARY = {"xray": "findings", "ct": "findings", "ultrasound": "pocus"}


def multilabel_vocabulary(modality: str, vocabulary: str | None = None) -> tuple[str, ...]:
    """The class order of ``target="multilabel"`` for ``vocabulary`` (default: the modality's)."""
    chosen = vocabulary or DEFAULT_VOCABULARY[modality]
    return FINDING_VOCABULARIES[chosen].names if chosen in FINDING_VOCABULARIES else MULTILABEL_VOCABULARY


def validate_vocabulary(target: str, vocabulary: str | None, modality: str) -> str | None:
    """``vocabulary=`` checked against ``target=`` and the modality; the default filled in."""
    if target != "multilabel":
        if vocabulary is not None:
            raise ValueError('vocabulary= only applies to target="multilabel"')
        return None
    vocabulary = vocabulary or DEFAULT_VOCABULARY[modality]
    fits = [name for name in FINDING_VOCABULARIES if FINDING_VOCABULARIES[name].modality == modality]
    if modality != "ultrasound":
        fits.insert(0, "findings")
    if vocabulary not in fits:
        known = "" if vocabulary in VOCABULARIES else "unknown "
        raise ValueError(f"{known}vocabulary {vocabulary!r} for {modality}; choose one of {', '.join(fits)}")
    return vocabulary


def validate(
    task: str, mask_source: str | None, score: str | None, rater: str | None, target: str, modality: str
) -> tuple[str | None, str | None, str | None]:
    """Check the task options; return (mask_source, score, rater) with defaults filled in."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if target == "multilabel" and task != "classification":
        raise ValueError('target="multilabel" goes with task="classification"')
    if task != "segmentation" and mask_source is not None:
        raise ValueError('mask_source= only applies to task="segmentation"')
    if task != "severity" and (score is not None or rater is not None):
        raise ValueError('score= and rater= only apply to task="severity"')
    if task == "segmentation":
        mask_source = mask_source or DEFAULT_MASK_SOURCE.get(modality)
        if mask_source not in MASK_SOURCES:
            raise ValueError(f"unknown mask_source {mask_source!r}; choose one of {', '.join(MASK_SOURCES)}")
    if task == "severity":
        score = score or "brixia_global"
        if score not in SEVERITY_SCORES:
            raise ValueError(f"unknown score {score!r}; choose one of {', '.join(SEVERITY_SCORES)}")
        raters = SEVERITY_SCORES[score][1]
        rater = rater or raters[0]
        if rater not in raters:
            raise ValueError(f"score {score!r} has raters {', '.join(raters)}, not {rater!r}")
    return mask_source, score, rater


def _triple(value: Any, what: str, kind: type) -> tuple | None:
    if value is None:
        return None
    values = (value,) * 3 if isinstance(value, (int, float)) and not isinstance(value, bool) else tuple(value)
    if len(values) != 3:
        raise ValueError(f"{what} must be one number or (z, y, x), got {value!r}")
    converted = tuple(kind(v) for v in values)
    if min(converted) <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return converted


def validate_volume_options(
    modality: str,
    task: str,
    volumes: bool,
    spacing: float | Sequence[float] | None,
    volume_size: int | Sequence[int] | None,
    monai_dict: bool,
) -> tuple[tuple[float, float, float] | None, tuple[int, int, int] | None]:
    """Check the volume options; return (spacing, volume_size) as (z, y, x) triples."""
    if not volumes:
        if spacing is not None or volume_size is not None or monai_dict:
            raise ValueError("spacing=, volume_size= and monai_dict= need volumes=True")
        return None, None
    if modality != "ct":
        raise ValueError(f"volumes=True is for CT, not {modality!r}")
    if task == "segmentation" and not monai_dict:
        raise ValueError(
            'volumes=True with task="segmentation" serves the mask_source= mask volume under "mask": '
            "add monai_dict=True"
        )
    if task not in ("classification", "segmentation"):
        raise ValueError("volumes=True serves (volume, label) and the mask volume where one exists; task= must stay")
    if spacing is not None and volume_size is not None:
        raise ValueError("give spacing= or volume_size=, not both")
    return _triple(spacing, "spacing", float), _triple(volume_size, "volume_size", int)  # type: ignore[return-value]
