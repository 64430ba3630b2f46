"""The TensorFlow adapter on the real samples.

TensorFlow never runs inside the pytest process: importing torchvision after TensorFlow
segfaults with the pinned versions, and other test modules in the same xdist worker
import torchvision. All TF checks run in one subprocess (one TF import, ~10 s) that
prints its findings as JSON; each test below asserts one of them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from covid19_images.loaders import load_manifest
from covid19_images.loaders._options import make_options
from covid19_images.loaders._select import select
from covid19_images.loaders.tf.adapter import (
    ROUTE_PNG_ALPHA,
    ROUTE_PNG_COLOUR,
    ROUTE_PNG_GRAY,
    ROUTE_READER,
    route_for,
    route_ratio,
)
from tests.conftest import build_synced_root
from tests.loaders.test_loaders_common import run_python

pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("loaders-tf")]


def _need(module: str) -> None:
    """Skip without importing: ``importorskip("tensorflow")`` would import TF into this process."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


SOURCES = ("ieee8023-covid-chestxray", "zhanglab-pediatric-xray", "covid19-pos-case")

CHECKS = r"""
import json, sys
import numpy as np
from covid19_images import load_covid_ct, load_covid_xray
from covid19_images.loaders.tf import adapter as tf_adapter
from covid19_images.loaders._pixels import load_item

root, cache_dir = sys.argv[1], sys.argv[2]
out = {}
ds = load_covid_xray("tf", root=root, split=None)
modules = list(sys.modules)
out["torchvision_first"] = modules.index("torchvision") < modules.index("tensorflow")
import tensorflow as tf
out["is_dataset"] = isinstance(ds, tf.data.Dataset)
out["spec"] = [[list(s.shape), s.dtype.name] for s in ds.element_spec]
out["classes"] = ds.classes
out["manifest_labels"] = ds.manifest["label"].tolist()
images, labels = [], []
for image, label in ds.as_numpy_iterator():
    images.append(image)
    labels.append(int(label))
out["labels"] = labels
out["range"] = [float(min(i.min() for i in images)), float(max(i.max() for i in images))]
rows = ds.manifest.reset_index(drop=True)
diffs = []
for index, row in rows.iterrows():
    reference = load_item(f"{root}/{row['path']}", int(row["frame"]), row["format"], (224, 224), 3)
    diffs.append(float(np.abs(images[index] * 255.0 - reference).mean()))
out["mean_abs_diff_vs_reader"] = diffs
out["routes"] = [
    tf_adapter.route_for(f"{root}/{p}", m, int(w), int(h), (224, 224))
    for p, m, w, h in zip(rows["path"], rows["format"], rows["width"], rows["height"])
]

# JPEG/PNG must never touch the Python reader: make it explode and decode everything
def explode(*args, **kwargs):
    raise RuntimeError("python reader used")
real = tf_adapter.load_item
tf_adapter.load_item = explode
native = load_covid_xray("tf", root=root, split=None, sources="zhanglab-pediatric-xray")
out["native_count"] = sum(1 for _ in native)
tf_adapter.load_item = real

ct = load_covid_ct("tf", root=root, split=None, sources="covid19-pos-case")
ct_rows = ct.manifest.reset_index(drop=True)
ct_diff = 0.0
for index, (image, label) in enumerate(ct.as_numpy_iterator()):
    row = ct_rows.iloc[index]
    reference = load_item(f"{root}/{row['path']}", int(row["frame"]), row["format"], (224, 224), 3)
    ct_diff = max(ct_diff, float(np.abs(image * 255.0 - reference).max()))
out["ct_count"] = len(ct_rows)
out["ct_formats"] = sorted(set(ct_rows["format"]))
out["ct_max_abs_diff"] = ct_diff

cached = load_covid_xray("tf", root=root, split=None, image_size=64, cache=True, cache_dir=cache_dir)
rows = cached.manifest.reset_index(drop=True)
equal = True
for index, (image, label) in enumerate(cached.as_numpy_iterator()):
    row = rows.iloc[index]
    reference = load_item(f"{root}/{row['path']}", int(row["frame"]), row["format"], (64, 64), 3)
    equal &= bool(np.array_equal(image, reference * np.float32(1.0 / 255.0))) and int(label) == labels[index]
out["cache_equal"] = equal

gray = load_covid_xray("tf", root=root, split="train", image_size=(128, 96), channels=1)
out["gray_spec"] = list(gray.element_spec[0].shape)
batched = load_covid_xray("tf", root=root, split="train", batch_size=8)
first = next(iter(batched))
out["batch_shape"] = list(first[0].shape)
shuffled = load_covid_xray("tf", root=root, split="train", shuffle=True, seed=1)
train = load_covid_xray("tf", root=root, split="train")
out["shuffle_same_labels"] = sorted(int(y) for _, y in shuffled) == sorted(int(y) for _, y in train)

import torchvision  # noqa: the import that would segfault had TF been imported first
import fastai.vision.all  # noqa
out["torchvision_after_tf_ok"] = True
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("loaders-tf"), mirrors, SOURCES)


@pytest.fixture(scope="module")
def tf_results(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    _need("tensorflow")
    cache_dir = tmp_path_factory.mktemp("tf-cache")
    script = CHECKS.replace("sys.argv[1], sys.argv[2]", f"{str(root)!r}, {str(cache_dir)!r}")
    result = run_python(script, timeout=600)
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stderr[-4000:]}"
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_elements_are_float_hwc_images_and_int32_labels(tf_results: dict) -> None:
    assert tf_results["is_dataset"]
    assert tf_results["spec"] == [[[224, 224, 3], "float32"], [[], "int32"]]
    low, high = tf_results["range"]
    assert 0.0 <= low < 0.1 and 0.9 < high <= 1.0


def test_labels_follow_the_manifest_and_classes(tf_results: dict, root: Path) -> None:
    classes = tf_results["classes"]
    assert classes == sorted(classes) and "unknown" not in classes
    assert [classes[i] for i in tf_results["labels"]] == tf_results["manifest_labels"]
    expected = select(load_manifest(root), make_options("xray", root=root, split=None)).items
    assert tf_results["manifest_labels"] == expected["label"].tolist()


def test_tf_pixels_agree_with_the_shared_reader(tf_results: dict) -> None:
    # different resize kernels (TF vs Pillow) and DCT scaling: a few grey levels at most
    diffs = tf_results["mean_abs_diff_vs_reader"]
    assert max(diffs) < 3.0, diffs
    assert sum(diffs) / len(diffs) < 1.5
    alpha = [d for d, r in zip(diffs, tf_results["routes"], strict=True) if r == ROUTE_PNG_ALPHA]
    assert alpha and max(alpha) < 3.0, "RGBA PNGs composited on black in TF match the reader"


def test_jpeg_and_png_decode_in_tensorflow_not_python(tf_results: dict, root: Path, on_miniature: bool) -> None:
    assert tf_results["native_count"] > 10
    items = select(load_manifest(root), make_options("xray", root=root, split=None)).items
    side = 48 if on_miniature else 224  # the miniature's pictures are <= 256 px: a target they are "full size" for
    routes = [
        route_for(f, m, int(w), int(h), (side, side))
        for f, m, w, h in zip(items["file"], items["format"], items["width"], items["height"], strict=True)
    ]
    jpegs = [
        (route_ratio(r), int(w), int(h))
        for r, m, w, h in zip(routes, items["format"], items["width"], items["height"], strict=True)
        if m == "jpeg" and route_ratio(r)
    ]
    assert max(ratio for ratio, _, _ in jpegs) >= 4, "full-size X-rays decode at 1/4 scale or less"
    assert all(min(w, h) // ratio >= side for ratio, w, h in jpegs if ratio > 1), "never decoded below the target"
    assert {ROUTE_PNG_COLOUR, ROUTE_PNG_GRAY} & set(routes)


def test_dicom_goes_through_the_shared_reader(tf_results: dict) -> None:
    assert tf_results["ct_formats"] == ["dicom"] and tf_results["ct_count"] > 3
    assert tf_results["ct_max_abs_diff"] < 1e-3


def test_cache_serves_the_readers_exact_pixels(tf_results: dict) -> None:
    assert tf_results["cache_equal"]


def test_options(tf_results: dict) -> None:
    assert tf_results["gray_spec"] == [128, 96, 1]
    assert tf_results["batch_shape"] == [8, 224, 224, 3]
    assert tf_results["shuffle_same_labels"]


def test_torchvision_is_imported_before_tensorflow(tf_results: dict) -> None:
    assert tf_results["torchvision_first"] and tf_results["torchvision_after_tf_ok"]


def test_routes_for_formats_tf_would_get_wrong(shared: Path) -> None:
    """RGBA PNGs are composited on black (TF's own decode would drop alpha); DICOM uses the reader."""
    from covid19_images.imaging.formats import read_head, sniff_format
    from covid19_images.loaders.tf.adapter import png_info

    pngs = sorted(shared.rglob("*.png"))
    alpha = [p for p in pngs if (png_info(str(p)) or (0, 0, False))[1] == 6]
    assert alpha, "the samples include RGBA PNGs"
    assert all(route_for(str(p), "png", 1000, 1000, (224, 224)) == ROUTE_PNG_ALPHA for p in alpha)
    dicom = next(p for p in sorted((shared / "coyotespike-covid-19-pos-case").rglob("IM*")))
    assert sniff_format(read_head(dicom)) == "dicom"
    assert route_for(str(dicom), "dicom", 512, 512, (224, 224)) == ROUTE_READER


def test_tensorflow_first_then_fastai_works(root: Path) -> None:
    _need("tensorflow")
    _need("fastai")
    result = run_python(
        f"""
        import tensorflow
        from covid19_images import load_covid_xray
        ds = load_covid_xray("torch", root={str(root)!r}, split="val")
        print(tuple(ds[0][0].shape))
        dls = load_covid_xray("fastai", root={str(root)!r}, bs=2, num_workers=0, image_size=32)
        print("FASTAI", tuple(dls.one_batch()[0].shape))
        """
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "(3, 224, 224)" in result.stdout and "FASTAI (2, 3, 32, 32)" in result.stdout
