"""torch's augmentation: the "light" preset as torchvision transforms v2, under a per-item seed.

The policy (what "light" does and leaves out, and why) and the draw keys are framework-neutral:
:mod:`covid19_images.loaders.augment`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from covid19_images.loaders._frameworks import require
from covid19_images.loaders.augment import LIGHT, draw_seed


def torch_light() -> Any:
    """The "light" preset as torchvision transforms v2 (tv_tensors-aware: masks/boxes follow)."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomAffine(
                degrees=LIGHT["degrees"], translate=(LIGHT["translate"], LIGHT["translate"]), scale=LIGHT["scale"]
            ),
            v2.ColorJitter(brightness=LIGHT["brightness"], contrast=LIGHT["contrast"]),
        ]
    )


class TorchAugmenter:
    """``augmenter(image, target=None, key=..., epoch=...)``: the transform under a per-item seed.

    ``transform`` is the "light" preset or the user's callable; it is called as
    ``transform(image)`` or ``transform(image, target)``. The seed is set on a forked torch
    RNG, so the caller's random state is untouched and any torch-random callable is
    reproducible too.
    """

    def __init__(self, augment: Any, seed: int) -> None:
        self.transform: Callable[..., Any] = torch_light() if augment == "light" else augment
        self.seed = int(seed)

    def __call__(self, image: Any, target: Any = None, *, key: str, epoch: int) -> Any:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(draw_seed(self.seed, epoch, key))
            if target is None:
                return _plain(self.transform(_as_image(image)))
            augmented, target = self.transform(_as_image(image), target)
            return _plain(augmented), target


def _as_image(image: Any) -> Any:
    from torchvision import tv_tensors

    return image if isinstance(image, tv_tensors.TVTensor) else tv_tensors.Image(image)


def _plain(image: Any) -> Any:
    import torch

    return image.as_subclass(torch.Tensor) if isinstance(image, torch.Tensor) else image


def make_torch_augmenter(augment: Any, seed: int) -> TorchAugmenter | None:
    """None when ``augment`` is None; torchvision is imported only when augmentation is asked for."""
    if augment is None:
        return None
    require("torchvision", "torch")  # guards the TensorFlow-then-torchvision order too
    return TorchAugmenter(augment, seed)
