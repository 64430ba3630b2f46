"""CT as volumes: one item per DICOM series or NIfTI volume, a 3-D array ``(z, y, x)``.

``load_covid_ct(volumes=True)`` groups the slice items the 2-D loader would serve (same
filters, same splits: a series never straddles two) into series and volumes. Everything
here is framework-neutral NumPy (:class:`VolumeReader`), so torch
(:mod:`~covid19_images.loaders.torch.volumes`), tf (:mod:`~covid19_images.loaders.tf.volumes`)
and fastai (:mod:`~covid19_images.loaders.fastai.volumes`) serve the same arrays:

* DICOM slices are ordered by their position along the slice normal,
  ``ImagePositionPatient · (row direction × column direction)`` from
  ``ImageOrientationPatient``, never by file name or InstanceNumber (both lie in the wild).
  Values are Hounsfield units (``RescaleSlope``/``Intercept`` applied), float32. Spacing
  ``(z, y, x)`` in mm: the median step between sorted positions, then ``PixelSpacing``.
* MetaImage volumes (``.mha``, STOIC2021) are read whole through SimpleITK after the header's
  size is checked against the budgets (:mod:`covid19_images.imaging.metaimage`); spacing from
  the header.
* NIfTI volumes are turned slice by slice into the display orientation ``read_pixels``
  uses, so slice k of the volume is the 2-D loader's slice k; spacing from the header.
  MedSeg's mask volume (``extra.mask``) comes with it, oriented the same way.
* Outline masks (RICORD-1a's MD.ai freeform outlines, one annotation row per outline and slice)
  become a DICOM series' mask volume: each slice's outlines drawn filled at its size, in the
  series' slice order; a slice of an annotated series with no outline is empty (background).
* A DICOM volume is one series UID in one folder of one source: a series copied into a
  second folder or a second source is another volume (see ``deduplicate``).
* ``spacing=`` (mm, one number or ``(z, y, x)``) or ``volume_size=`` (voxels) resample:
  trilinear for the image, nearest neighbour for the mask (:func:`resample`, the same
  arithmetic as torch's ``interpolate(mode="trilinear", align_corners=False)`` and
  ``"nearest-exact"``).
* ``deduplicate=True`` (default) drops a volume that is a copy: every one of its slices
  is in a duplicate group (``dup_group``) that another served volume also covers. Volumes
  are visited largest first (then by source and key), so the copy kept is stable and a
  series holding all the slices of a shorter one absorbs it. Duplicate groups are the
  manifest's (identical bytes or pixels, confirmed near-duplicates), as for 2-D images, so
  two reconstructions the manifest judged duplicates slice by slice count as copies too.
  A volume with even one slice
  held nowhere else stays whole: a volume always keeps every slice it has. The dropped
  ones are listed in ``dataset.duplicates`` (dropped key -> kept key).
* ``target="multilabel"`` serves the multi-hot vector over ``vocabulary=`` (float32, order
  ``target_classes``) instead of the label: STOIC2021's ``covid19``/``severe`` per volume. A
  volume is served only when every one of its slices carries the same ratings; one whose slices
  are rated in part or differently is left out with a warning that counts them.
* ``monai_dict=True`` serves ``{"image": [1, z, y, x], "label": int, "mask": [1, z, y, x]
  (only when the volume has one), "meta": {...}}`` so MONAI dictionary transforms apply.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from covid19_images.core.paths import DATASETS_DIR
from covid19_images.core.schema import parse_extra
from covid19_images.loaders.volume_copies import drop_duplicate_volumes

if TYPE_CHECKING:
    from covid19_images.loaders._options import Options
    from covid19_images.loaders._select import Selection


@dataclass
class VolumeItem:
    """One volume: its files (DICOM slices, or one NIfTI), label and provenance."""

    kind: str  # "dicom", "nifti" or "metaimage"
    files: list[str]
    label_index: int
    label: str
    source: str
    key: str
    image_ids: list[str] = field(default_factory=list)
    mask: str = ""
    split: str = ""  # the manifest's split of its slices (a series never straddles two)
    #: image_id -> the outline ids drawn on that slice (``mask`` is then their export file)
    outlines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    multilabel: tuple[int, ...] = ()  # target="multilabel": the indices set to 1 over ``target_classes``


def group_volumes(selection: Selection) -> list[VolumeItem]:
    """Slice items -> volumes: DICOM by (source, series UID, folder), NIfTI by file."""
    volumes: dict[tuple[str, ...], VolumeItem] = {}
    items = selection.items
    for row in items.drop_duplicates("path").itertuples():
        extra = parse_extra(row.extra)
        if row.format in ("nifti", "metaimage"):
            key = (row.source, row.path)
            mask = extra.get("mask")
            root_mask = f"{DATASETS_DIR}/{row.source}/{mask}" if mask else ""  # extra.mask is source-relative
            volumes[key] = VolumeItem(
                row.format,
                [row.file],
                int(row.label_index),
                row.label,
                row.source,
                row.path,
                [row.image_id],
                root_mask,
                row.split,
            )
            continue
        if row.format != "dicom":
            continue  # 2-D CT pictures (JPEG/PNG slices from papers) are not volumes
        series = str(extra.get("series_uid") or f"path:{row.path}")
        folder = str(Path(row.path).parent)
        key = (row.source, series, folder)
        item = VolumeItem("dicom", [], int(row.label_index), row.label, row.source, series, split=row.split)
        volume = volumes.setdefault(key, item)
        volume.files.append(row.file)
        volume.image_ids.append(row.image_id)
    # a series UID found in two folders of one source: the key names the folder too
    twins = Counter(k[:2] for k in volumes if len(k) == 3)
    for key, volume in volumes.items():
        if len(key) == 3 and twins[key[:2]] > 1:
            volume.key = f"{key[1]}@{key[2]}"
    return list(volumes.values())


def read_dicom_series(files: Sequence[str | Path]) -> tuple[np.ndarray, tuple[float, float, float], list[str]]:
    """HU volume ``(z, y, x)`` float32, spacing ``(z, y, x)`` mm and the files in the order used."""
    import pydicom

    slices = []
    for path in files:
        ds = pydicom.dcmread(str(path))
        if "ImageOrientationPatient" not in ds or "ImagePositionPatient" not in ds:
            raise ValueError(f"{path}: no ImageOrientationPatient/ImagePositionPatient, cannot place the slice")
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
        normal = np.cross(orientation[:3], orientation[3:])
        position = float(np.dot(np.array([float(v) for v in ds.ImagePositionPatient]), normal))
        slices.append((position, str(path), ds))
    slices.sort(key=lambda item: item[0])
    arrays = []
    for _, _, ds in slices:
        slope = float(getattr(ds, "RescaleSlope", 1) or 1)
        intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
        arrays.append(ds.pixel_array.astype(np.float32) * slope + intercept)
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"slices of one series differ in size ({sorted(shapes)})")
    positions = np.array([p for p, _, _ in slices])
    step = (
        float(np.median(np.diff(positions)))
        if len(positions) > 1
        else float(getattr(slices[0][2], "SliceThickness", 1) or 1)
    )
    row_spacing, column_spacing = (float(v) for v in slices[0][2].PixelSpacing)
    return np.stack(arrays), (abs(step) or 1.0, row_spacing, column_spacing), [p for _, p, _ in slices]


def read_nifti_volume(path: str | Path, *, mask: bool = False) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Volume ``(z, y, x)`` in the 2-D loader's display orientation, spacing (z, y, x) mm."""
    import nibabel

    from covid19_images.imaging.decode import _display_slice

    image = nibabel.load(str(path))
    proxy = image.dataobj
    count = image.shape[2] if len(image.shape) >= 3 else 1
    planes = []
    for k in range(count):
        data = np.asarray(proxy[:, :, k] if len(image.shape) >= 3 else proxy[:, :], dtype=np.float32)
        planes.append(_display_slice(data, image.affine))
    volume = np.stack(planes)
    if mask:
        volume = np.rint(volume)
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3]) + (1.0,) * max(0, 3 - len(image.shape))
    shown_first = _display_slice(np.zeros(image.shape[:2]), image.affine).shape
    in_plane = (zooms[1], zooms[0]) if shown_first == (image.shape[1], image.shape[0]) else (zooms[0], zooms[1])
    return np.ascontiguousarray(volume), (zooms[2], *in_plane)


def target_shape(
    shape: Sequence[int], spacing: Sequence[float], options: Options
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """Shape to resample to, and the spacing it will have."""
    if options.volume_size is not None:
        size = tuple(options.volume_size)
    elif options.spacing is not None:
        size = tuple(max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, options.spacing, strict=True))
    else:
        return tuple(shape), tuple(spacing)  # type: ignore[return-value]
    new_spacing = tuple(n * s / m for n, s, m in zip(shape, spacing, size, strict=True))
    return size, new_spacing  # type: ignore[return-value]


def resample(volume: np.ndarray, size: Sequence[int], *, nearest: bool) -> np.ndarray:
    """Trilinear (image) or nearest-neighbour (mask) resampling of a ``(z, y, x)`` array to ``size``.

    ``scipy.ndimage.zoom`` with ``grid_mode=True`` (pixels are areas: half-pixel centres, edge
    values extended) is the arithmetic of torch's ``interpolate(mode="trilinear",
    align_corners=False)`` and ``"nearest-exact"``, in SciPy, so every framework serves the
    same voxels without importing another one.
    """
    from scipy import ndimage

    size = tuple(int(n) for n in size)
    if tuple(volume.shape) == size:
        return volume
    zoom = [n / old for old, n in zip(volume.shape, size, strict=True)]
    data = volume if nearest else np.asarray(volume, dtype=np.float32)
    out = ndimage.zoom(data, zoom, order=0 if nearest else 1, mode="nearest", grid_mode=True)
    if out.shape != size:  # zoom rounds shape * factor: never off here, but the caller needs exactly size
        raise ValueError(f"resampled to {out.shape}, expected {size}")
    return np.ascontiguousarray(out)


class VolumeReader:
    """The volumes of ``options`` and their arrays, NumPy only (shared by every framework).

    ``volumes`` lists the :class:`VolumeItem` s served, ``duplicates`` the copies dropped
    by ``deduplicate``, ``classes`` the label order.
    """

    def __init__(self, options: Options) -> None:
        from covid19_images.loaders._manifest import selection_for
        from covid19_images.loaders._select import NoItemsError

        self.options = options
        selection = selection_for(volume_selection_options(options))
        self.stamp = selection.stamp  # the manifest as it was: arrays() refuses files a later sync rewrote
        self.classes: list[str] = list(selection.classes)
        self.volumes: list[VolumeItem] = group_volumes(selection)
        self.duplicates: dict[str, str] = {}
        self._lut: np.ndarray | None = None
        self.target_classes: list[str] = self.classes
        if options.target == "multilabel":
            self.volumes = self._with_multilabel(self.volumes, selection)
        if options.task == "segmentation":
            self.volumes, self._lut = self._with_mask_source(self.volumes)
        if options.deduplicate:
            self.volumes, self.duplicates = drop_duplicate_volumes(self.volumes, selection.items)
        if not self.volumes:
            raise NoItemsError("no DICOM series or NIfTI volumes among the selected CT items")

    def __len__(self) -> int:
        return len(self.volumes)

    def _with_multilabel(self, volumes: list[VolumeItem], selection: Selection) -> list[VolumeItem]:
        """The volumes whose every slice carries one and the same ``vocabulary=`` rating, each with it."""
        import warnings

        from covid19_images.loaders._select import NoItemsError
        from covid19_images.loaders.tasks import multilabel_terms, multilabel_vocabulary

        self.target_classes = list(multilabel_vocabulary(self.options.modality, self.options.vocabulary))
        found, wanted = multilabel_terms(selection.items, self.options)
        terms = dict(zip(selection.items["image_id"], found, strict=True))
        kept, uneven = [], 0
        for volume in volumes:
            rated = {terms.get(i) for i in volume.image_ids}
            if len(rated) == 1 and None not in rated:
                kept.append(replace(volume, multilabel=rated.pop()))
            elif rated != {None}:  # some slices rated, others not or otherwise: the volume is not one reading
                uneven += 1
        if uneven:
            warnings.warn(f"{uneven} volume(s) whose slices do not all carry one reading of {wanted}: not served",
                          stacklevel=3)  # fmt: skip
        if not kept:
            raise NoItemsError(f"no CT volume with {wanted} among the {len(volumes)} selected volumes")
        return kept

    def multihot(self, index: int) -> np.ndarray:
        """``target="multilabel"``: volume ``index``'s float32 vector over ``target_classes``."""
        vector = np.zeros(len(self.target_classes), dtype=np.float32)
        vector[list(self.volumes[index].multilabel)] = 1.0
        return vector

    def _with_mask_source(self, volumes: list[VolumeItem]) -> tuple[list[VolumeItem], np.ndarray]:
        """The volumes ``mask_source=`` annotated, each with that mask volume, and its value -> class table.

        The mask file comes from ``annotations.csv`` (rows of the mask set's source and class names on
        the volume's image), not from ``extra.mask``: Zenodo 3757476 has two mask sets per volume.
        """
        from covid19_images.imaging.masks import OUTLINE_PREFIX
        from covid19_images.loaders._select import NoItemsError
        from covid19_images.loaders._task_options import MASK_SOURCES
        from covid19_images.manifest.annotations import read_annotations

        spec = MASK_SOURCES[str(self.options.mask_source)]
        rows = read_annotations(self.options.root)
        if rows is None:
            raise NoItemsError("volumes with task='segmentation' need manifests/annotations.csv: run sync")
        rows = rows[(rows["kind"] == "mask") & (rows["source"] == spec.source) & rows["name"].isin(spec.names)]
        files = dict(zip(rows["image_id"], rows["path"], strict=False))
        outlines: dict[str, list[str]] = {}
        for image_id, value in zip(rows["image_id"], rows["value"], strict=True):
            if str(value).startswith(OUTLINE_PREFIX):
                outlines.setdefault(image_id, []).append(str(value))
        kept = []
        for volume in volumes:
            found = [files[i] for i in volume.image_ids if i in files]
            drawn = {i: tuple(sorted(outlines[i])) for i in volume.image_ids if i in outlines}
            if volume.kind == "dicom" and drawn:  # outlines on some of its slices: a mask volume
                kept.append(replace(volume, mask=files[next(iter(drawn))], outlines=drawn))
            elif volume.kind != "dicom" and found:
                kept.append(replace(volume, mask=found[0]))
        if not kept:
            raise NoItemsError(f"no CT volume with a {self.options.mask_source} mask among the selected volumes")
        lut = np.full(256, spec.other, dtype=np.uint8)
        for stored, index in spec.values.items():
            lut[stored] = index
        return kept, lut

    def split_off(self, split: str) -> VolumeReader:
        """The volumes of one manifest split, without reading the manifest again (fastai's train,
        valid and test from one selection). A copy lives in its original's split (duplicate
        groups never cross splits), so ``duplicates`` are kept by where the kept volume is."""
        from covid19_images.loaders._select import NoItemsError

        part = copy.copy(self)
        part.options = replace(self.options, split=split)
        part.volumes = [v for v in self.volumes if v.split == split]
        if not part.volumes:
            counts = Counter(v.split for v in self.volumes)
            shown = ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"
            raise NoItemsError(f"no DICOM series or NIfTI volumes in split {split!r} (volumes per split: {shown})")
        held = {f"{v.source}:{v.key}" for v in part.volumes}
        part.duplicates = {dropped: kept for dropped, kept in self.duplicates.items() if kept in held}
        return part

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
        """``(volume float32 (z, y, x) in HU, mask uint8 or None, meta)`` after resampling."""
        item = self.volumes[index]
        if self.stamp is not None:
            self.stamp.check()  # ManifestChanged: the files may no longer be what the labels describe
        mask = None
        if item.kind == "dicom":
            volume, spacing, files = read_dicom_series(item.files)
            if item.outlines:  # drawn slice by slice in the order just read; no outline = background
                from covid19_images.imaging.masks import read_outline_volume

                image_of = dict(zip(map(str, item.files), item.image_ids, strict=True))
                drawn = [item.outlines.get(image_of[f], ()) for f in files]
                mask = read_outline_volume(self.options.root / item.mask, drawn, *volume.shape[1:])
        elif item.kind == "metaimage":
            from covid19_images.imaging.metaimage import read_volume

            volume, spacing = read_volume(item.files[0])
            files = item.files
        else:
            volume, spacing = read_nifti_volume(item.files[0])
            files = item.files
            if item.mask:
                mask, _ = read_nifti_volume(self.options.root / item.mask, mask=True)
        if mask is not None and self._lut is not None:  # task="segmentation": stored values -> classes
            mask = self._lut[np.clip(mask, 0, 255).astype(np.uint8)].astype(np.float32)
        size, new_spacing = target_shape(volume.shape, spacing, self.options)
        volume = resample(volume, size, nearest=False)
        if mask is not None:
            mask = resample(mask, size, nearest=True).astype(np.uint8)
        meta = {
            "source": item.source,
            "key": item.key,
            "files": files,
            "image_ids": item.image_ids,
            "original_spacing": spacing,
            "spacing": new_spacing,
            "shape": tuple(volume.shape),
            "mask_file": item.mask,
        }
        return volume.astype(np.float32, copy=False), mask, meta


def volume_selection_options(options: Options) -> Options:
    """The slice selection volumes are grouped from: every slice (duplicates are judged per volume)."""
    from covid19_images.core.schema import LABELS

    # target="multilabel": every slice, whatever its rating (a volume is judged whole); the label is not the target
    unfiltered = options.target == "multilabel" and options.labels is None and options.classes is None
    every_label = LABELS if unfiltered else None
    return replace(
        options,
        volumes=False,
        spacing=None,
        volume_size=None,
        monai_dict=False,
        deduplicate=False,
        task="classification",
        mask_source=None,
        target="label",
        vocabulary=None,
        labels=every_label or options.labels,
    )
