"""Framework-native datasets over the manifest: ``load(modality, framework, **options)``.

The loaders are one framework-neutral part and one room per framework:

* here, framework-neutral: the options (:mod:`._options`, checked by :mod:`._checks` and
  :mod:`._task_options`), the manifest read and the selection (:mod:`._manifest`,
  :mod:`._select`), task targets (:mod:`.tasks`), the volume reader (:mod:`.volumes`),
  pixels and their cache (:mod:`._pixels`, :mod:`.cache`), shard bookkeeping
  (:mod:`.shards`), the augmentation policy and draw keys (:mod:`.augment`), importing a
  framework (:mod:`._frameworks`) and the adapter registry (:mod:`.adapters`);
* :mod:`covid19_images.loaders.torch`, :mod:`covid19_images.loaders.tf`,
  :mod:`covid19_images.loaders.fastai`: everything of one framework (its datasets, tasks,
  volumes, streaming and augmentation).

Imports run one way: this module reaches a framework room only by name, through
:mod:`.adapters`; a room imports the neutral part (fastai's also imports torch's, which it is
built on), and the neutral part imports no room and no framework
(``tests/test_import_cycles.py`` holds both, and that there is no import cycle).

A missing framework is an ``ImportError`` naming the extra to install; TensorFlow and torch
work in one process in any order (:mod:`._frameworks`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from covid19_images.core.medical import MedicalWarning, warn_medical
from covid19_images.loaders._manifest import read_manifest_typed
from covid19_images.loaders._options import DEFAULT_VIDEO_STRIDE, KNOWN_LABELS, Options, make_options, user_options
from covid19_images.loaders.adapters import adapter_names, framework_options, get_adapter, get_factory

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


def load_manifest(root: str | os.PathLike | None = None, *, version: str | None = None) -> pd.DataFrame:
    """The unified manifest as a DataFrame: one row per file.

    Args:
        root: the data root; default ``$COVID19_IMAGES_ROOT``, else this checkout, else cwd.
        version: a release (tag) of the root: its manifest, read from git
            (:func:`covid19_images.manifest.versions.manifest_at`).

    Columns are strings except ``width``/``height``/``frames`` (nullable Int64) and ``age``
    (float, NaN if unknown); manifests/README.md documents each.
    """
    warn_medical()
    return read_manifest_typed(root, version=version)


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
    """The registered adapter, or the framework's streaming / volume factory when the options ask for one."""
    if options.shards is not None:  # stream an export instead of the manifest
        from covid19_images.loaders.shards import check_stream_options

        check_stream_options(options)
        stream = get_factory(framework, "stream")
        if stream is None:
            raise ValueError("shards= streams for 'torch' and 'tf'; fastai reads the manifest (leave shards out)")
        return stream
    if options.volumes:  # one 3-D item per series
        return get_factory(framework, "volumes") or adapter
    return adapter


_ALL_USER_OPTIONS = frozenset(f.name for f in user_options())


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
