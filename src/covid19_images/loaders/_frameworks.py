"""Importing a framework: the ImportError that names the extra, and any order of TensorFlow and torch.

Every framework room (:mod:`~covid19_images.loaders.torch`, :mod:`~covid19_images.loaders.tf`,
:mod:`~covid19_images.loaders.fastai`) imports its framework through :func:`require`, so this
module names frameworks only as strings and imports none of them itself.

TensorFlow and torch in one process, in any order: TensorFlow loads its native libraries
``RTLD_GLOBAL``; ``triton`` (which ``torch._dynamo`` pulls in, e.g. through
``torchvision.ops`` and so fastai) imported afterwards binds to TensorFlow's LLVM symbols
and segfaults. :func:`guard_tf_then_torchvision` imports triton once with
``RTLD_DEEPBIND`` (its own symbols first) before any torch-side import that follows
TensorFlow, so every order of ``load_*("torch"|"tf"|"fastai")`` works, and so does a user's
own ``import tensorflow`` before a torch or fastai loader
(``tests/loaders/test_import_order.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from typing import Any

_EXTRAS = {"torch": "torch", "torchvision": "torch", "tensorflow": "tf", "fastai": "fastai"}


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


def import_tensorflow() -> Any:
    """Import TensorFlow (the ImportError names the ``tf`` extra), torchvision first if it is installed.

    The guard above covers torch-side imports that go through the loaders; torchvision first
    also covers the user's own ``import torchvision`` after a TF loader
    (``tests/loaders/tf/test_adapter.py`` checks that line).
    """
    first = "tensorflow" not in sys.modules and "torchvision" not in sys.modules
    if first and importlib.util.find_spec("torchvision") is not None:
        with contextlib.suppress(Exception):  # a broken torchvision (any error) must not stop TF users
            importlib.import_module("torchvision")
    return require("tensorflow", "tf")
