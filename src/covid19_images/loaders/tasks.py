"""What a loader serves besides a label: masks, severity scores, boxes, multi-hot findings.

``task="classification"`` (the default) is the label loader the adapters always served.
The other tasks read ``manifests/annotations.csv`` and serve only the items that carry the
requested annotation:

* ``"segmentation"`` → ``(image, mask)``; the mask is resized by nearest neighbour to the
  served image size, its values mapped to class indices (:data:`MASK_SOURCES`). Pixels the
  annotators marked "ignore" (V7's devices over the lungs) become :data:`IGNORE_INDEX`
  (255; pass ``ignore_index=255`` to the loss).
* ``"severity"`` → ``(image, float)``: ``score=`` one of :data:`SEVERITY_SCORES`,
  ``rater=`` whose score (Brixia: ``senior`` default, ``junior`` or ``mean`` of both).
* ``"detection"`` → ``(image, boxes)`` in each framework's convention, scaled to the served
  image and moved by ``augment=`` with it. Label indices follow :data:`BOX_CLASSES` (0 is
  background). torch: ``{"boxes": tv_tensors.BoundingBoxes(format="XYXY"), "labels"}``
  (torchvision's detection models); tf: ``{"boxes": float32 [N, 4], "labels": int32 [N]}``
  in Keras 3's ``bounding_box_format="xyxy"`` (pixels), ragged per image, ``-1``-padded
  when batched (:mod:`covid19_images.loaders.tf.tasks`); fastai: ``BBoxBlock`` +
  ``BBoxLblBlock`` (``TensorBBox`` scaled to -1..1, ``bb_pad`` collate), as fastai's own
  detection examples (:mod:`covid19_images.loaders.fastai.tasks`).

``target="multilabel"`` (with classification) serves a multi-hot float vector over
``vocabulary=`` (:data:`VOCABULARIES`; the order is fixed and is the dataset's ``target_classes``):

* ``"findings"`` (X-ray and CT default), :data:`MULTILABEL_VOCABULARY`: NIH ChestX-ray14's 14
  findings plus the pathogens and syndromes of ieee8023's compound findings (``COVID-19, ARDS``,
  ``Pneumonia/Viral/COVID-19``), parsed from the raw finding string. ``No Finding`` is the
  all-zero vector; an item whose finding names nothing in the vocabulary (blank, ``todo``) is
  not served.
* ``"siim"`` (X-ray): SIIM-FISABIO-RSNA's study class (``negative_for_pneumonia``,
  ``typical_appearance``, ``indeterminate_appearance``, ``atypical_appearance``: one is 1) and
  ``opacity`` (the image has opacity boxes), from ``annotations.csv``; served on SIIM's images
  and on copies of them (RICORD-1c, BIMCV) found by the duplicate search.
* ``"stoic"`` (CT): STOIC2021's ``covid19`` (RT-PCR) and ``severe`` (death or intubation at one
  month), per volume (with ``volumes=True``) or per slice.
* ``"pocus"`` (ultrasound default, :data:`ULTRASOUND_VOCABULARY`): the POCUS sheet's rated
  findings (B-lines, A-lines, consolidation, effusion ...); a column left blank counts as 0,
  unrated clips are not served.

Each vocabulary holds what its source stated, 0 or 1: none adds a "normal" class for an absent
finding. Items without the annotations are not served (never an all-zero vector): SIIM and STOIC
need every name rated, and a warning counts the images rated in part or rated both 0 and 1 (two
copies of a picture read differently). A selection with none names the sources that have them.

Selection for a task: every row with the annotation across all splits first, then one
image per duplicate group *among annotated rows* (so a resized copy without the mask never
displaces the copy that has it), then the split. Same order as ``_select``: the copy kept
does not depend on the split asked for.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from covid19_images.core.schema import LABELS
from covid19_images.loaders._select import NoItemsError, Selection, largest_first, select

if TYPE_CHECKING:
    from covid19_images.loaders._options import Options

from covid19_images.loaders._task_options import (  # re-exported: the task vocabularies' public home
    BOX_CLASSES,
    FINDING_VOCABULARIES,
    MASK_SOURCES,
    MULTILABEL_VOCABULARY,
    SEVERITY_SCORES,
    ULTRASOUND_VOCABULARY,  # noqa: F401 - re-exported
    VOCABULARIES,  # noqa: F401 - re-exported
    multilabel_vocabulary,
)

_NO_FINDING = {"no finding", "normal"}


def needs_task_selection(options: Options) -> bool:
    return options.task != "classification" or options.target != "label"


def finding_terms(finding: str) -> list[int] | None:
    """Vocabulary indices named by a raw finding; ``[]`` for No Finding, None if nothing is named."""
    parts = [p.strip() for p in re.split(r"[,|/]", finding or "") if p.strip()]
    if not parts:
        return None
    if all(p.lower() in _NO_FINDING for p in parts):
        return []
    found: set[int] = set()
    for part in parts:
        words = part.lower().replace("_", " ")
        for index, term in enumerate(MULTILABEL_VOCABULARY):
            if re.search(rf"(?<![\w.-]){re.escape(term.lower().replace('_', ' '))}(?![\w-])", words):
                found.add(index)
    return sorted(found) if found else None


def _annotations(options: Options) -> pd.DataFrame:
    from covid19_images.manifest.annotations import ANNOTATIONS_FILE, read_annotations

    if options.version is not None:
        from covid19_images.manifest.versions import annotations_at

        frame = annotations_at(options.root, options.version)
    else:
        frame = read_annotations(options.root)
    if frame is None:
        raise NoItemsError(
            f"task={options.task!r} needs {options.root / ANNOTATIONS_FILE}, which does not exist yet: "
            "rebuild the manifest with `covid19-images sync --offline`"
        )
    return frame


def _frame_key(image_id: str, frame: str) -> tuple[str, int]:
    return image_id, int(frame) if frame else 0


def multilabel_terms(items: pd.DataFrame, options: Options) -> tuple[list[tuple[int, ...] | None], str]:
    """Each item's multi-hot indices over ``options.vocabulary`` (None: not served) and what was asked.

    ``findings`` parses the item's raw finding string; the others read the vocabulary source's
    ``finding`` annotations of the item's image (spread to copies of its pictures). An item rated
    on only part of a complete vocabulary, or rated 0 and 1 for one name (two copies of one picture
    read differently), is not served, and a warning counts them: never a silent all-zero vector.
    """
    if options.vocabulary not in FINDING_VOCABULARIES:
        found = [finding_terms(f) for f in items["finding"]]
        return [None if t is None else tuple(t) for t in found], "a finding in the multi-label vocabulary"
    spec = FINDING_VOCABULARIES[str(options.vocabulary)]
    rows = _annotations(options)
    rows = rows[(rows["kind"] == "finding") & (rows["source"] == spec.source) & rows["name"].isin(spec.names)]
    rated: dict[str, dict[str, set[str]]] = {}
    for image_id, name, value in zip(rows["image_id"], rows["name"], rows["value"], strict=True):
        rated.setdefault(image_id, {}).setdefault(name, set()).add(str(value))
    part, conflicting = set(), set()
    by_image: dict[str, tuple[int, ...] | None] = {}
    for image_id, names in rated.items():
        if any(len(values) > 1 for values in names.values()):
            conflicting.add(image_id)
        elif spec.complete and len(names) < len(spec.names):
            part.add(image_id)
        else:
            by_image[image_id] = tuple(i for i, n in enumerate(spec.names) if names.get(n) == {"1"})
    wanted = f"all {len(spec.names)} {spec.what}" if spec.complete else spec.what
    held = set(items["image_id"])
    left = [f"{len(held & part)} image(s) rated on only part of {', '.join(spec.names)}"] if held & part else []
    if held & conflicting:
        left.append(f"{len(held & conflicting)} image(s) rated both 0 and 1 for one name (copies read differently)")
    if left:
        warnings.warn(f"target='multilabel', vocabulary={options.vocabulary!r}: {'; '.join(left)}: not served",
                      stacklevel=4)  # fmt: skip
    return [by_image.get(i) for i in items["image_id"]], wanted


def multilabel_holders(manifest: pd.DataFrame, options: Options) -> list[str]:
    """The sources whose images carry ``options.vocabulary``'s findings (for the message when none is selected)."""
    rows = manifest[manifest["modality"] == options.modality]
    if options.vocabulary in FINDING_VOCABULARIES:
        spec = FINDING_VOCABULARIES[str(options.vocabulary)]
        found = _annotations(options)
        found = found[(found["kind"] == "finding") & (found["source"] == spec.source) & found["name"].isin(spec.names)]
        rows = rows[rows["image_id"].isin(set(found["image_id"]))]
    else:
        rows = rows[[finding_terms(f) is not None for f in rows["finding"]]]
    return sorted(set(rows["source"]))


def _holders(manifest: pd.DataFrame, options: Options) -> str:
    """For target="multilabel" messages: where the vocabulary's findings are ("" for the other tasks)."""
    if options.task != "classification":
        return ""
    found = multilabel_holders(manifest, options)
    return f"; {options.vocabulary!r} findings are on images of: {', '.join(found) or 'no source here'}"


def _attach(items: pd.DataFrame, options: Options) -> tuple[pd.DataFrame, str]:
    """Items with their target columns, only those that have one; and what was asked, for messages."""
    keys = list(zip(items["image_id"], items["frame"].astype(int), strict=True))
    if options.task == "classification":  # target="multilabel"
        terms, wanted = multilabel_terms(items, options)
        items = items.assign(multilabel=terms)
        return items[[t is not None for t in terms]], wanted
    annotations = _annotations(options)
    if options.task == "segmentation":
        spec = MASK_SOURCES[str(options.mask_source)]
        rows = annotations[
            (annotations["kind"] == "mask")
            & (annotations["source"] == spec.source)
            & annotations["name"].isin(spec.names)
        ]
        from covid19_images.imaging.masks import OUTLINE_PREFIX

        masks: dict[tuple[str, int], str] = {}
        outlines: dict[tuple[str, int], list[str]] = {}
        for i, f, p, v in zip(rows["image_id"], rows["frame"], rows["path"], rows["value"], strict=True):
            masks[_frame_key(i, f)] = p
            if str(v).startswith(OUTLINE_PREFIX):  # outlines drawn on one slice: their union is its mask
                outlines.setdefault(_frame_key(i, f), []).append(str(v))
        found = [masks.get(k, "") for k in keys]
        items = items.assign(mask_path=found, mask_outlines=[tuple(outlines.get(k, ())) for k in keys])
        return items[[bool(p) for p in found]], f"a {options.mask_source} mask"
    if options.task == "severity":
        source, _raters = SEVERITY_SCORES[str(options.score)]
        rows = annotations[
            (annotations["kind"] == "severity")
            & (annotations["source"] == source)
            & (annotations["name"] == options.score)
        ]
        if options.rater != "mean":
            rows = rows[rows["rater"] == options.rater]
        values = pd.to_numeric(rows["value"], errors="coerce")
        scores = values.groupby(rows["image_id"]).mean().to_dict()
        found = [scores.get(i, np.nan) for i, _ in keys]
        items = items.assign(severity=found)
        return items[~np.isnan(np.asarray(found, dtype=float))], f"a {options.score} score by {options.rater}"
    rows = annotations[annotations["kind"] == "box"]
    boxes: dict[str, list[tuple[float, float, float, float, int]]] = {}
    for row in rows.itertuples():
        if row.name in BOX_CLASSES:
            corners = (float(row.x0), float(row.y0), float(row.x1), float(row.y1))
            boxes.setdefault(row.image_id, []).append((*corners, BOX_CLASSES.index(row.name)))
    found_boxes = [tuple(sorted(set(boxes.get(i, [])))) for i, _ in keys]
    items = items.assign(boxes=found_boxes)
    return items[[bool(b) for b in found_boxes]], "lung boxes"


def select_for_task(manifest: pd.DataFrame, options: Options) -> Selection:
    """The items of ``options.task``: annotated rows, one per duplicate group, then the split."""
    # the label is not the target here: unless asked otherwise, every label (incl. unknown) is served
    every_label = LABELS if options.labels is None and options.classes is None else options.labels
    try:
        base = select(manifest, replace(options, deduplicate=False, split=None, labels=every_label))
    except NoItemsError as err:
        raise NoItemsError(f"{err}{_holders(manifest, options)}") from err
    items, wanted = _attach(base.items, options)
    steps = [f"{len(base.items)} items before", f"{len(items)} with {wanted}"]
    if options.deduplicate and len(items):
        ordered = largest_first(items)
        first = ordered.drop_duplicates("dup_group").set_index("dup_group")["image_id"]
        keep = [g == "" or first.get(g) == i for g, i in zip(items["dup_group"], items["image_id"], strict=True)]
        items = items[keep]
        steps.append(f"{len(items)} after one image per duplicate group")
    if options.split is not None:
        items = items[items["split"] == options.split]
        steps.append(f"{len(items)} in split {options.split}")
    if items.empty:
        raise NoItemsError(
            f"no {options.modality} items with {wanted} ({'; '.join(steps)}){_holders(manifest, options)}"
        )
    return Selection(items=items.reset_index(drop=True), classes=base.classes, root=base.root)


class TaskTargets:
    """Per-item targets of one selection, framework-neutral (NumPy)."""

    def __init__(self, items: pd.DataFrame, options: Options) -> None:
        self.task = options.task
        self.target = options.target
        self.root = options.root
        self.classes: tuple[str, ...] = ()
        if self.task == "segmentation":
            spec = MASK_SOURCES[str(options.mask_source)]
            self.classes = spec.classes
            self._lut = np.full(256, spec.other, dtype=np.uint8)
            for stored, index in spec.values.items():
                self._lut[stored] = index
            self._masks = items["mask_path"].tolist()
            self._frames = items["frame"].astype(int).tolist()
            self._outlines = list(items["mask_outlines"])
            self._mask_sizes = list(zip(items["height"].astype(int), items["width"].astype(int), strict=True))
        elif self.task == "severity":
            self._values = items["severity"].to_numpy(dtype=np.float32)
        elif self.task == "detection":
            self.classes = BOX_CLASSES
            self._boxes = list(items["boxes"])
            self._sizes = list(zip(items["width"].astype(float), items["height"].astype(float), strict=True))
        elif self.target == "multilabel":
            self.classes = multilabel_vocabulary(options.modality, options.vocabulary)
            self._multihot = np.zeros((len(items), len(self.classes)), dtype=np.float32)
            for row, terms in enumerate(items["multilabel"]):
                self._multihot[row, list(terms)] = 1.0

    def mask(self, index: int, height: int, width: int) -> np.ndarray:
        """Class-index mask ``(height, width)`` uint8, nearest-neighbour resized to the image."""
        from covid19_images.imaging.masks import read_mask, read_outline_mask, resize_nearest

        if self._outlines[index]:  # drawn at the size of the slice they were drawn on
            stored = read_outline_mask(
                self.root / self._masks[index], list(self._outlines[index]), *self._mask_sizes[index]
            )
        else:
            stored = read_mask(self.root / self._masks[index], self._frames[index])
        return resize_nearest(self._lut[stored], height, width)

    def boxes(self, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """``(boxes [N, 4] float32 XYXY in served pixels, labels [N] int64)``."""
        found = np.asarray(self._boxes[index], dtype=np.float64).reshape(-1, 5)
        source_width, source_height = self._sizes[index]
        scale = np.array([width / source_width, height / source_height] * 2)
        return (found[:, :4] * scale).astype(np.float32), found[:, 4].astype(np.int64)

    def value(self, index: int) -> float:
        return float(self._values[index])

    def multihot(self, index: int) -> np.ndarray:
        return self._multihot[index].copy()
