"""Every order of the torch, TensorFlow and fastai loaders in one process works (issue 14).

Each order runs in its own fresh interpreter (an import order can only be tried once per
process), starting, as a notebook does, with the user's own import of the first framework:
all three loaders are built and used there, TensorFlow and torch ops run after each other,
and the process must exit 0. Before the fix, ``import tensorflow`` followed by the torch or
fastai loader was refused (and importing torchvision there segfaulted, exit -11).
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest

from tests.conftest import build_synced_root
from tests.loaders.test_loaders_common import XRAY_SOURCES, run_python

pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("import-order")]

ORDERS = list(itertools.permutations(("torch", "tf", "fastai")))

FIRST_IMPORT = {"torch": "torch", "tf": "tensorflow", "fastai": "fastai.vision.all"}

USE = {
    "torch": """
ds = load_covid_xray("torch", root=root, split=None, image_size=64)
image, label = ds[0]
import torch
assert tuple(image.shape) == (3, 64, 64) and torch.isfinite(image).all()
""",
    "tf": """
ds = load_covid_xray("tf", root=root, split=None, image_size=64, batch_size=2)
import tensorflow as tf
images, labels = next(iter(ds))
assert tuple(images.shape) == (2, 64, 64, 3) and float(tf.reduce_sum(images)) > 0
""",
    "fastai": """
dls = load_covid_xray("fastai", root=root, bs=2, num_workers=0, image_size=64)
x, y = dls.one_batch()
assert tuple(x.shape) == (2, 3, 64, 64)
import torch, torchvision
boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0]])
assert torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0]
""",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    for module in ("tensorflow", "torch", "fastai"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    return build_synced_root(tmp_path_factory.mktemp("import-order"), mirrors, XRAY_SOURCES)


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_all_three_loaders_in_one_process_in_this_order(root: Path, order: tuple[str, ...]) -> None:
    # as a notebook does: the first framework is imported by the user before any loader
    code = f"import {FIRST_IMPORT[order[0]]}\n"
    code += "from covid19_images import load_covid_xray\nroot = " + repr(str(root)) + "\n"
    for framework in order:
        code += USE[framework] + f"print('USED {framework}', flush=True)\n"
    code += "import tensorflow as tf\nimport torch\n"
    code += "assert float(tf.reduce_sum(tf.ones((2, 2)))) == 4.0 and float(torch.ones(2, 2).sum()) == 4.0\n"
    code += "print('ALL OK')\n"
    result = run_python(code, timeout=600)
    assert result.returncode == 0, (order, result.returncode, result.stdout, result.stderr[-3000:])
    assert "ALL OK" in result.stdout
