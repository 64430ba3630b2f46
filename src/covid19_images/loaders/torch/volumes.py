"""PyTorch dataset of CT volumes (see :mod:`covid19_images.loaders.volumes`)."""

from __future__ import annotations

from typing import Any

from covid19_images.loaders._frameworks import require
from covid19_images.loaders._options import Options
from covid19_images.loaders.volumes import VolumeReader

torch = require("torch", "torch")


class CovidVolumeDataset(torch.utils.data.Dataset):
    """``ds[i]`` is ``(volume, label)``: float32 ``[1, z, y, x]`` in HU and an int (``(volume,
    label, key)`` with ``with_id``); or a MONAI-style dict with ``monai_dict=True``. With
    ``target="multilabel"`` the label is a float32 multi-hot tensor over ``target_classes``.
    ``volumes`` lists the :class:`VolumeItem` s, ``duplicates`` the copies ``deduplicate`` dropped."""

    def __init__(
        self,
        options: Options,
        transform: Any = None,
        target_transform: Any = None,
        reader: VolumeReader | None = None,
    ) -> None:
        self.reader = reader if reader is not None else VolumeReader(options)
        self.options = self.reader.options
        self.transform = transform
        self.target_transform = target_transform
        self.classes = self.reader.classes
        self.target_classes = self.reader.target_classes
        self.volumes = self.reader.volumes
        self.duplicates = self.reader.duplicates

    def __len__(self) -> int:
        return len(self.volumes)

    def arrays(self, index: int) -> tuple[Any, Any, dict[str, Any]]:
        """``(volume, mask or None, meta)`` as NumPy, after resampling."""
        return self.reader.arrays(index)

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} volumes")
        volume, mask, meta = self.arrays(index)
        label: Any = self.volumes[index].label_index
        if self.options.target == "multilabel":
            label = torch.from_numpy(self.reader.multihot(index))
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
        return (image, label, meta["key"]) if self.options.with_id else (image, label)

    def __repr__(self) -> str:
        dropped = f", {len(self.duplicates)} duplicate volumes dropped" if self.duplicates else ""
        return f"CovidVolumeDataset({len(self)} volumes, classes={self.classes}, split={self.options.split!r}{dropped})"


def make_volume_dataset(options: Options, transform: Any = None, target_transform: Any = None) -> Any:
    """torch's volume dataset (``transform`` / ``target_transform`` as the 2-D torch loader's)."""
    return CovidVolumeDataset(options, transform=transform, target_transform=target_transform)
