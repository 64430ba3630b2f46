"""Framework-native datasets over the manifest: ``load(modality, framework, **options)``.

The shared options are declared once in :mod:`covid19_images.loaders._options`; adapters are
registered by name in :mod:`covid19_images.loaders.adapters`.

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
from typing import TYPE_CHECKING, Any

from covid19_images.loaders._options import DEFAULT_VIDEO_STRIDE, KNOWN_LABELS, Options, make_options, user_options
from covid19_images.loaders.adapters import adapter_names, framework_options, get_adapter

if TYPE_CHECKING:
    import pandas as pd

    from covid19_images.loaders._select import Selection

#: names served from ``loaders._select`` on first use: ``import covid19_images`` (which renders
#: the loaders' docstrings from ``_options``) must not pay for pandas
_FROM_SELECT = ("DataNotAvailableError", "NoItemsError", "Selection")


def __getattr__(name: str) -> Any:
    if name in _FROM_SELECT:
        from covid19_images.loaders import _select

        return getattr(_select, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    import pandas as pd

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


def load_manifest(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The unified manifest as a DataFrame: one row per file.

    Args:
        root: the data root; default ``$COVID19_IMAGES_ROOT``, else this checkout, else cwd.

    Columns are strings except ``width``/``height``/``frames`` (nullable Int64) and ``age``
    (float, NaN if unknown); manifests/README.md documents each.
    """
    warn_medical()
    return read_manifest_typed(root)


def selection_for(options: Options, *, split: str | object | None = ...) -> Selection:
    """Read the manifest, select the items and prove their files are on disk."""
    from covid19_images.loaders._select import check_available, select

    manifest = read_manifest_typed(options.root)
    if split is not ...:
        from dataclasses import replace

        options = replace(options, split=split)  # type: ignore[arg-type]
    from covid19_images.loaders.tasks import needs_task_selection, select_for_task

    selection = (select_for_task if needs_task_selection(options) else select)(manifest, options)
    from covid19_images.loaders._portal import serve_fetched

    selection = serve_fetched(selection, only_fetched=options.only_fetched)
    if options.check_files:
        check_available(selection)
    return selection


def load(modality: str, framework: str = "torch", **kwargs: Any) -> Any:
    """A native dataset of ``framework`` over the ``modality`` images of the manifest.

    ``kwargs`` are the options declared in :mod:`covid19_images.loaders._options` (shared by
    every framework) plus the framework's own, declared by its factory's signature
    (:mod:`covid19_images.loaders.adapters`). The public ``load_covid_xray``/``ct``/``ultrasound``
    spell the shared ones out; this is what they call.
    """
    adapter = get_adapter(framework)
    shared = {k: v for k, v in kwargs.items() if k in _ALL_USER_OPTIONS or k == "root"}
    options = make_options(modality, **shared)
    factory = _factory_for(options, framework, adapter)
    specific = {k: v for k, v in kwargs.items() if k not in shared}
    accepted = framework_options(factory)
    unknown = sorted(set(specific) - set(accepted))
    if unknown:
        declared = sorted(f.name for f in user_options(modality))
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)} for the {framework!r} loader; its own options: "
            f"{', '.join(accepted) or 'none'}; shared options: {', '.join(declared)}"
        )
    warn_medical()
    return factory(options, **specific)


def _factory_for(options: Options, framework: str, adapter: Any) -> Any:
    """The registered adapter, or the streaming / volume factory when the options ask for one."""
    if options.shards is not None:  # stream an export instead of the manifest
        from covid19_images.loaders.shards import check_stream_options

        check_stream_options(options)
        if framework == "torch":
            from covid19_images.loaders.streaming import make_torch_stream

            return make_torch_stream
        if framework == "tf":
            from covid19_images.loaders.streaming_tf import make_tf_stream

            return make_tf_stream
        raise ValueError("shards= streams for 'torch' and 'tf'; fastai reads the manifest (leave shards out)")
    if options.volumes:  # one 3-D item per series
        if framework == "tf":
            from covid19_images.loaders.tf_volumes import make_tf_volume_dataset

            return make_tf_volume_dataset
        if framework == "fastai":
            from covid19_images.loaders.fastai_volumes import make_fastai_volume_dataloaders

            return make_fastai_volume_dataloaders
        from covid19_images.loaders.volumes import make_volume_dataset

        return make_volume_dataset
    return adapter


_ALL_USER_OPTIONS = frozenset(f.name for f in user_options())


def default_workers() -> int:
    """Worker count for parallel decoding: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


FRAMEWORKS = adapter_names()

__all__ = [
    "DEFAULT_VIDEO_STRIDE",
    "FRAMEWORKS",
    "KNOWN_LABELS",
    "DataNotAvailableError",
    "MedicalWarning",
    "NoItemsError",
    "Options",
    "Selection",
    "adapter_names",
    "load",
    "load_manifest",
]
