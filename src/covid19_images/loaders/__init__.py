"""Framework-native datasets over the manifest: ``load(modality, framework, **options)``.

Nothing here imports a deep-learning framework at module level; each adapter imports its
framework when it is asked for, and a missing one is an ``ImportError`` naming the extra
to install.

TensorFlow and torch in one process, in any order: TensorFlow loads its native libraries
``RTLD_GLOBAL``; ``triton`` (which ``torch._dynamo`` pulls in, e.g. through
``torchvision.ops`` and so fastai) imported afterwards binds to TensorFlow's LLVM symbols
and segfaults. :func:`guard_tf_then_torchvision` imports triton once with
``RTLD_DEEPBIND`` (its own symbols first) before any torch-side import that follows
TensorFlow, so every order of ``load_*("torch"|"tf"|"fastai")`` works.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Any

import pandas as pd

from covid19_images.loaders._options import DEFAULT_VIDEO_STRIDE, KNOWN_LABELS, Options, make_options
from covid19_images.loaders._select import DataNotAvailableError, NoItemsError, Selection, check_available, select

FRAMEWORKS = ("torch", "tf", "fastai")
_EXTRAS = {"torch": "torch", "torchvision": "torch", "tensorflow": "tf", "fastai": "fastai"}
_NUMERIC_INT = ("width", "height", "frames")


class MedicalWarning(UserWarning):
    """Shown once per process on first use: what these images can and cannot tell you."""


_warned = False


def warn_medical() -> None:
    """Issue :data:`covid19_images.MEDICAL_WARNING` once per process."""
    global _warned
    if _warned:
        return
    _warned = True
    from covid19_images import MEDICAL_WARNING

    # point the warning at the user's line, not at whichever wrapper of ours called us
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(MEDICAL_WARNING, MedicalWarning, stacklevel=level)


def require(module: str, framework: str) -> Any:
    """Import ``module`` or raise an ImportError that says which extra provides it.

    A torch-side module (torch, torchvision, fastai) imported after TensorFlow first gets
    triton isolated (:func:`guard_tf_then_torchvision`), so the import cannot segfault.
    """
    if module.split(".")[0] in ("torch", "torchvision", "fastai"):
        guard_tf_then_torchvision(framework)
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = _EXTRAS.get(module.split(".")[0], framework)
        raise ImportError(
            f"covid19-images {framework!r} datasets need {module.split('.')[0]}, which cannot be imported "
            f'({err}): pip install "covid19-images[{extra}]"'
        ) from err


def guard_tf_then_torchvision(framework: str) -> None:
    """Make torch/torchvision/fastai safe to import after TensorFlow (``framework`` is who asks).

    TensorFlow's native libraries are loaded ``RTLD_GLOBAL``; triton's ``libtriton.so``
    loaded afterwards resolves its LLVM symbols to TensorFlow's copies and crashes. Loaded
    once with ``RTLD_DEEPBIND`` it prefers its own, and every later ``import triton`` (from
    ``torch._dynamo``, torchvision, fastai) reuses that module. Nothing to do when
    TensorFlow is not loaded yet (the other order is safe), triton is already loaded, or
    the platform has no ``RTLD_DEEPBIND``; a missing triton means nothing can bind wrongly.
    """
    if "tensorflow" not in sys.modules or "triton" in sys.modules or not hasattr(os, "RTLD_DEEPBIND"):
        return
    old = sys.getdlopenflags()
    try:
        sys.setdlopenflags(old | os.RTLD_DEEPBIND)
        importlib.import_module("triton")
    except ImportError:
        pass
    finally:
        sys.setdlopenflags(old)


def read_manifest_typed(root: Any = None) -> pd.DataFrame:
    """The manifest with numeric columns typed; a clear error if there is none yet."""
    from covid19_images.core.paths import find_root
    from covid19_images.manifest.build import MANIFEST_FILE, read_manifest
    from covid19_images.sources.registry import DATASETS_DIR, REGISTRY_FILE

    base = find_root(root)
    frame = read_manifest(base)
    if frame is None:
        datasets = base / DATASETS_DIR
        present = sorted(
            d.name
            for d in (datasets.iterdir() if datasets.is_dir() else ())
            if d.is_dir() and any(c.name != ".git" for c in d.iterdir())
        )
        where = f"no manifest at {base / MANIFEST_FILE}"
        if not (base / REGISTRY_FILE).is_file():
            raise FileNotFoundError(
                f"{where}, and {base} is not a covid19-images root (no {REGISTRY_FILE}): pass root=... "
                "or set COVID19_IMAGES_ROOT"
            )
        if present:
            raise FileNotFoundError(
                f"{where}, but {len(present)} source(s) are checked out ({', '.join(present)}): build it from them "
                f"with `covid19-images sync --offline --root {base}`"
            )
        raise FileNotFoundError(
            f"{where} and no source is checked out under {datasets}: run `covid19-images sync --root {base}` "
            "(fetches every source and builds the manifest), or `git submodule update --init datasets/<name>` "
            "then `covid19-images sync --offline`"
        )
    for column in _NUMERIC_INT:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce").astype("float64")
    return frame


def load_manifest(root: Any = None) -> pd.DataFrame:
    """The unified manifest as a DataFrame: one row per file, strings except
    ``width``/``height``/``frames`` (nullable Int64) and ``age`` (float, NaN if unknown)."""
    warn_medical()
    return read_manifest_typed(root)


def selection_for(options: Options, *, split: str | object | None = ...) -> Selection:
    """Read the manifest, select the items and prove their files are on disk."""
    manifest = read_manifest_typed(options.root)
    if split is not ...:
        from dataclasses import replace

        options = replace(options, split=split)  # type: ignore[arg-type]
    selection = select(manifest, options)
    if options.check_files:
        check_available(selection)
    return selection


_COMMON = frozenset(
    {
        "root",
        "split",
        "split_scheme",
        "image_size",
        "channels",
        "labels",
        "sources",
        "views",
        "licenses",
        "classes",
        "deduplicate",
        "include_augmented",
        "include_non_axial",
        "video_frames",
        "cache",
        "cache_dir",
        "check_files",
    }
)
_SPECIFIC = {
    "torch": frozenset({"transform", "target_transform", "dtype"}),
    "tf": frozenset({"batch_size", "shuffle", "seed", "prefetch"}),
    "fastai": frozenset({"bs", "item_tfms", "batch_tfms", "num_workers", "shuffle", "device"}),
}


def load(modality: str, framework: str = "torch", **kwargs: Any) -> Any:
    """A native dataset of ``framework`` over the ``modality`` images of the manifest.

    Common options (all frameworks):

    * ``split``: ``"train"`` (default), ``"val"``, ``"test"`` or None (every row); the
      assignment comes from ``split_scheme`` (``"default"``: stable patient-level split).
      fastai takes train and valid together and ignores ``split`` (see its adapter).
    * ``image_size``: int or (height, width); every image is squashed to exactly that size
      (no crop, so lung apices and costophrenic angles stay in the picture). None keeps
      each image's own size (not batchable without a transform).
    * ``channels``: 3 (gray replicated; what ImageNet-pretrained models expect) or 1.
    * ``labels``: which labels to serve; default every known label (covid-19, pneumonia,
      normal, other) and *not* ``unknown``; ``"all"`` includes unknown.
    * ``classes``: fixed class order (label -> index); default: sorted labels present after
      filtering, computed across all splits so train/val/test agree.
    * ``sources``, ``views``, ``licenses``: exact-match filters on those manifest columns.
    * ``deduplicate`` (True): one image per duplicate group (first by image_id).
    * ``include_augmented`` (False): serve upstream's augmented copies.
    * ``include_non_axial`` (False, CT): serve localizer and reformat series.
    * ``video_frames``: frames of videos/animated GIFs to serve: a stride (default 10),
      ``"middle"`` or ``"all"``. Volumes serve every slice.
    * ``cache`` (False) / ``cache_dir``: keep decoded, resized pixels on disk (see
      ``loaders.cache``; default folder ``<root>/.cache/covid19-images``).
    * ``check_files`` (True): stat every file at construction and fail with the fetch
      command if a source is not checked out or a file is missing.

    Framework options: torch ``transform``, ``target_transform``, ``dtype`` ("float32" or
    "uint8"); tf ``batch_size``, ``shuffle``, ``seed``, ``prefetch``; fastai ``bs``,
    ``item_tfms``, ``batch_tfms``, ``num_workers``, ``shuffle``, ``device``.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    allowed = _COMMON | _SPECIFIC[framework]
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)} for the {framework!r} loader; "
            f"options: {', '.join(sorted(allowed))}"
        )
    common = {k: v for k, v in kwargs.items() if k in _COMMON}
    specific = {k: v for k, v in kwargs.items() if k not in _COMMON}
    options = make_options(modality, **common)
    warn_medical()
    if framework == "torch":
        from covid19_images.loaders.torch_adapter import make_torch_dataset

        return make_torch_dataset(options, **specific)
    if framework == "tf":
        from covid19_images.loaders.tf_adapter import make_tf_dataset

        return make_tf_dataset(options, **specific)
    from covid19_images.loaders.fastai_adapter import make_fastai_dataloaders

    return make_fastai_dataloaders(options, split_given="split" in kwargs, **specific)


def default_workers() -> int:
    """Worker count for parallel decoding: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


__all__ = [
    "DEFAULT_VIDEO_STRIDE",
    "FRAMEWORKS",
    "KNOWN_LABELS",
    "DataNotAvailableError",
    "MedicalWarning",
    "NoItemsError",
    "Options",
    "Selection",
    "load",
    "load_manifest",
]
