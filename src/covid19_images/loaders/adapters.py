"""Framework adapters registered by name, the way Hugging Face ``datasets`` registers formatters.

An adapter is a factory ``build(options, **framework_options)`` in a module that imports its
framework; the registry holds only ``"module:function"`` strings, so registering and listing
adapters imports nothing. The factory's keyword parameters *are* the declaration of that
framework's options: :func:`framework_options` reads them from its signature, and ``load``
refuses any other name.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

_ADAPTERS: dict[str, str] = {}
#: framework -> {"stream": target, "volumes": target}: the factories ``shards=`` and ``volumes=True`` use
_FACTORIES: dict[str, dict[str, str]] = {}


def _checked(target: str) -> str:
    module, _, function = target.partition(":")
    if not module or not function:
        raise ValueError(f"adapter target must be 'module:function', not {target!r}")
    return target


def register_adapter(name: str, target: str, *, stream: str | None = None, volumes: str | None = None) -> None:
    """Register ``target`` ("package.module:function") as the adapter called ``name``.

    Args:
        name: what users pass as ``framework`` ("torch", "tf", "fastai", or a new one).
        target: where the factory lives; imported only when the adapter is used.
        stream: the factory for ``shards=`` (streaming an export), if the framework has one.
        volumes: the factory for ``volumes=True`` (CT volumes), if the framework has one.
    """
    _ADAPTERS[name] = _checked(target)
    _FACTORIES[name] = {kind: _checked(t) for kind, t in (("stream", stream), ("volumes", volumes)) if t is not None}


def adapter_names() -> tuple[str, ...]:
    """The registered framework names, in registration order."""
    return tuple(_ADAPTERS)


def get_adapter(name: str) -> Callable[..., Any]:
    """Import and return the factory registered as ``name``."""
    try:
        target = _ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown framework {name!r}; choose one of {', '.join(_ADAPTERS)}") from None
    return _imported(target)


def get_factory(name: str, kind: str) -> Callable[..., Any] | None:
    """Import and return framework ``name``'s ``kind`` ("stream" or "volumes") factory; None if it has none."""
    target = _FACTORIES.get(name, {}).get(kind)
    return None if target is None else _imported(target)


def _imported(target: str) -> Callable[..., Any]:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def framework_options(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The framework-specific options a factory takes: its parameters after ``options``."""
    parameters = list(inspect.signature(factory).parameters.values())
    return {
        p.name: p
        for p in parameters[1:]
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


register_adapter(
    "torch",
    "covid19_images.loaders.torch.adapter:make_torch_dataset",
    stream="covid19_images.loaders.torch.streaming:make_torch_stream",
    volumes="covid19_images.loaders.torch.volumes:make_volume_dataset",
)
register_adapter(
    "tf",
    "covid19_images.loaders.tf.adapter:make_tf_dataset",
    stream="covid19_images.loaders.tf.streaming:make_tf_stream",
    volumes="covid19_images.loaders.tf.volumes:make_tf_volume_dataset",
)
register_adapter(
    "fastai",
    "covid19_images.loaders.fastai.adapter:make_fastai_dataloaders",
    volumes="covid19_images.loaders.fastai.volumes:make_fastai_volume_dataloaders",
)
