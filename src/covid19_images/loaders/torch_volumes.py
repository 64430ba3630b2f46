"""PyTorch dataset of CT volumes (see :mod:`covid19_images.loaders.volumes`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from covid19_images.loaders import require, selection_for
from covid19_images.loaders._options import Options
from covid19_images.loaders.volumes import (
    VolumeItem,
    group_volumes,
    read_dicom_series,
    read_nifti_volume,
    target_shape,
    volume_selection_options,
)

torch = require("torch", "torch")


def resample(volume: np.ndarray, size: tuple[int, int, int], *, nearest: bool) -> np.ndarray:
    """Trilinear (image) or nearest-neighbour (mask) resampling to ``size`` (z, y, x)."""
    if tuple(volume.shape) == tuple(size):
        return volume
    tensor = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]
    if nearest:
        out = torch.nn.functional.interpolate(tensor, size=size, mode="nearest-exact")
    else:
        out = torch.nn.functional.interpolate(tensor, size=size, mode="trilinear", align_corners=False)
    return out[0, 0].numpy()


class CovidVolumeDataset(torch.utils.data.Dataset):
    """``ds[i]`` is ``(volume, label)``: float32 ``[1, z, y, x]`` in HU and an int; or a
    MONAI-style dict with ``monai_dict=True``. ``volumes`` lists the :class:`VolumeItem` s."""

    def __init__(self, options: Options, transform: Any = None, target_transform: Any = None) -> None:
        self.options = options
        self.transform = transform
        self.target_transform = target_transform
        selection = selection_for(volume_selection_options(options))
        self.classes: list[str] = list(selection.classes)
        self.volumes: list[VolumeItem] = group_volumes(selection)
        if not self.volumes:
            from covid19_images.loaders._select import NoItemsError

            raise NoItemsError("no DICOM series or NIfTI volumes among the selected CT items")

    def __len__(self) -> int:
        return len(self.volumes)

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
        """``(volume, mask or None, meta)`` as NumPy, after resampling."""
        item = self.volumes[index]
        mask = None
        if item.kind == "dicom":
            volume, spacing, ordered = read_dicom_series(item.files)
            files = ordered
        else:
            volume, spacing = read_nifti_volume(item.files[0])
            files = item.files
            if item.mask:
                mask, _ = read_nifti_volume(self.options.root / item.mask, mask=True)
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
        return volume.astype(np.float32), mask, meta

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} volumes")
        volume, mask, meta = self.arrays(index)
        label: Any = self.volumes[index].label_index
        if self.target_transform is not None:
            label = self.target_transform(label)
        image = torch.from_numpy(volume)[None]
        if self.options.monai_dict:
            item: dict[str, Any] = {"image": image, "label": label, "meta": meta}
            if mask is not None:
                item["mask"] = torch.from_numpy(mask)[None]
            return self.transform(item) if self.transform is not None else item
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __repr__(self) -> str:
        return f"CovidVolumeDataset({len(self)} volumes, classes={self.classes}, split={self.options.split!r})"
