"""task="detection" in every framework, on ieee8023's real lung boxes (imageannotation_ai_lung_bounding_boxes.json):
boxes are the annotation's, scaled to the served size, and move with the image under augmentation."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from covid19_images import load_covid_xray
from tests.conftest import build_synced_root
from tests.loaders.test_loaders_common import run_python

SOURCES = ["ieee8023-covid-chestxray", "brixia-score", "v7labs-lung-masks"]
SIZE = 224
BOXES_JSON = "ieee8023-covid-chestxray-dataset/annotations/imageannotation_ai_lung_bounding_boxes.json"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    warnings.simplefilter("ignore")
    return build_synced_root(tmp_path_factory.mktemp("detection"), mirrors, SOURCES)


def coco_boxes(shared: Path) -> dict[tuple[str, int], list[float]]:
    """(file name, category id) -> COCO [x, y, w, h] in the file's pixels, read from the JSON itself."""
    data = json.loads((shared / BOXES_JSON).read_text())
    names = {i["id"]: i["file_name"] for i in data["images"]}
    return {(names[a["image_id"]], a["category_id"]): a["bbox"] for a in data["annotations"]}


def box_image_ids(root: Path) -> set[str]:
    rows = pd.read_csv(root / "manifests/annotations.csv", dtype=str, keep_default_na=False)
    return set(rows.loc[rows["kind"] == "box", "image_id"])


@pytest.mark.upstream
def test_torch_augment_light_moves_boxes_reproducibly(root: Path) -> None:
    everywhere = {"augment_splits": ["train", "val", "test"], "split": None, "task": "detection"}
    plain = load_covid_xray(root=root, **{k: v for k, v in everywhere.items() if k != "augment_splits"})
    light = load_covid_xray(root=root, augment="light", with_id=True, **everywhere)
    again = load_covid_xray(root=root, augment="light", with_id=True, **everywhere)
    moved = 0
    for index in range(len(plain)):
        image, target = plain[index]
        image_l, target_l, image_id = light[index]
        assert image_id == plain.manifest["image_id"].iloc[index]
        assert torch.equal(target_l["boxes"], again[index][1]["boxes"])  # same seed, same draw
        boxes = target_l["boxes"]
        assert float(boxes.min()) >= 0 and float(boxes.max()) <= SIZE
        moved += int(not torch.allclose(boxes, target["boxes"])) + int(not torch.equal(image_l, image))
    assert moved == 2 * len(plain)


TF_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
from covid19_images import load_covid_xray
from covid19_images.loaders.augment import item_key
from covid19_images.loaders.tf.augment import tf_light, tf_seed
root, size = sys.argv[1], 224
out = {}
plain = load_covid_xray("tf", root=root, split=None, task="detection")
out["format"] = plain.bounding_box_format
out["spec"] = {k: [list(v.shape), v.dtype.name] for k, v in plain.element_spec[1].items()}
out["paths"] = plain.manifest["path"].tolist()
items = list(plain.as_numpy_iterator())
out["boxes"] = [t["boxes"].tolist() for _, t in items]
out["labels"] = [t["labels"].tolist() for _, t in items]

def flip(image, target, seed):  # a known geometric transform written by a user
    b = target["boxes"]
    boxes = tf.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], axis=1)
    return tf.image.flip_left_right(image), {"boxes": boxes, "labels": target["labels"]}

everywhere = {"split": None, "task": "detection", "augment_splits": ["train", "val", "test"]}
flipped = load_covid_xray("tf", root=root, augment=flip, **everywhere)
out["flipped_ok"] = [bool(np.array_equal(f[0], p[0][:, ::-1])) for f, p in zip(flipped.as_numpy_iterator(), items)]
light = load_covid_xray("tf", root=root, augment="light", **everywhere)
out["light"] = [t["boxes"].tolist() for _, t in light.as_numpy_iterator()]
# the same draw applied to pictures of the plain boxes: where those pixels land is where the boxes must be
out["warped_extent"] = []
for (_, target), row in zip(items, plain.manifest.itertuples()):
    seed = tf_seed(tf, 0, tf.constant(0, tf.int64), tf.constant(item_key(row.image_id, row.frame)))
    extents = []
    for x0, y0, x1, y1 in target["boxes"]:
        picture = np.zeros((size, size, 1), np.float32)
        picture[int(round(y0)):int(round(y1)), int(round(x0)):int(round(x1))] = 1.0
        warped = tf_light(tf, tf.constant(picture), seed).numpy()[:, :, 0] > 0.5
        ys, xs = np.nonzero(warped)
        extents.append([float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)])
    out["warped_extent"].append(extents)
batched = load_covid_xray("tf", root=root, split=None, task="detection", batch_size=len(items), with_id=True)
images, targets, ids = next(iter(batched))
out["batched"] = [list(images.shape), list(targets["boxes"].shape), list(targets["labels"].shape), len(ids)]
print(json.dumps(out))
"""


@pytest.mark.framework
@pytest.mark.xdist_group("loaders-tf")
@pytest.mark.upstream
def test_tf_boxes_are_the_annotation_scaled_and_follow_the_image(root: Path, shared: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    done = run_python(f"import sys; sys.argv = ['x', {str(root)!r}]\n" + TF_SCRIPT, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["format"] == "xyxy"
    assert out["spec"] == {"boxes": [[None, 4], "float32"], "labels": [[None], "int32"]}
    coco = coco_boxes(shared)
    manifest = load_covid_xray(root=root, split=None, task="detection").manifest
    assert out["paths"] == manifest["path"].tolist() and set(manifest["image_id"]) <= box_image_ids(root)
    for index, row in enumerate(manifest.itertuples()):
        width, height = int(row.width), int(row.height)
        for box, label in zip(out["boxes"][index], out["labels"][index], strict=True):
            x, y, w, h = coco[(Path(row.path).name, label)]  # labels 1 right, 2 left lung = COCO category ids
            expected = [x * SIZE / width, y * SIZE / height, (x + w) * SIZE / width, (y + h) * SIZE / height]
            assert box == pytest.approx(expected, abs=1e-3)
    assert out["flipped_ok"] == [True] * len(manifest)
    for light, extents, plain in zip(out["light"], out["warped_extent"], out["boxes"], strict=True):
        assert len(light) == len(extents) == len(plain)
        for box, extent, before in zip(light, extents, plain, strict=True):
            assert box == pytest.approx(extent, abs=1.6)  # pixel centres vs continuous edges, rounding of the picture
            assert box != pytest.approx(before, abs=0.5)
    count = len(manifest)
    assert out["batched"] == [[count, SIZE, SIZE, 3], [count, max(map(len, out["boxes"])), 4], [count, 2], count]


@pytest.fixture(scope="module")
def root_with_val(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    """The sample root with two of the boxed images' rows moved to val (the samples put all of them in train,
    and fastai DataLoaders need both); the manifest's integrity record is rewritten with it."""
    from covid19_images.manifest.io import read_manifest

    warnings.simplefilter("ignore")
    root = build_synced_root(tmp_path_factory.mktemp("detection-val"), mirrors, SOURCES)
    manifest = read_manifest(root)
    assert manifest is not None
    boxed = sorted(box_image_ids(root) & set(manifest["image_id"]))
    move_to_split(root, manifest["image_id"].isin(boxed[-2:]), "val")
    return root


def move_to_split(root: Path, rows: pd.Series, split: str) -> None:
    """Rewrite the manifest with ``rows`` (a boolean mask over it) in ``split``, integrity record included."""
    from covid19_images.manifest import integrity
    from covid19_images.manifest.io import manifest_bytes, read_manifest, write_atomic

    manifest = read_manifest(root)
    assert manifest is not None
    manifest.loc[rows.to_numpy(), "split"] = split
    data = manifest_bytes(manifest)
    path = root / "manifests/manifest.csv"
    integrity.write_record(path, data)
    write_atomic(path, data)


@pytest.mark.framework
@pytest.mark.upstream
def test_fastai_boxes_are_tensorbbox_scaled_to_minus_one_one_and_flip_with_the_image(
    root_with_val: Path, shared: Path
) -> None:
    pytest.importorskip("fastai")
    from fastai.vision.augment import Flip

    options = {"root": root_with_val, "task": "detection", "bs": 2, "num_workers": 0, "shuffle": False}
    plain = load_covid_xray("fastai", **options)
    assert list(plain.vocab) == ["#na#", "right_lung", "left_lung", "lung_opacity"]
    served = pd.concat([plain.train_ds.items, plain.valid_ds.items])
    assert len(plain.valid_ds) and set(served["image_id"]) <= box_image_ids(root_with_val)
    coco = coco_boxes(shared)
    x, boxes, labels = plain.train.one_batch()
    assert type(boxes).__name__ == "TensorBBox" and type(labels).__name__ == "TensorMultiCategory"
    for k, row in enumerate(plain.train_ds.items.iloc[: len(x)].itertuples()):
        for box, label in zip(boxes[k].tolist(), labels[k].tolist(), strict=True):
            if label == 0:  # bb_pad's padding
                continue
            bx, by, bw, bh = coco[(Path(row.path).name, label)]
            w, h = int(row.width), int(row.height)
            expected = [bx / w * 2 - 1, by / h * 2 - 1, (bx + bw) / w * 2 - 1, (by + bh) / h * 2 - 1]
            assert box == pytest.approx([min(max(v, -1), 1) for v in expected], abs=1e-4)
    x_f, boxes_f, labels_f = load_covid_xray("fastai", **options, batch_tfms=[Flip(p=1.0)]).train.one_batch()
    assert torch.allclose(x_f, x.flip(-1), atol=1e-5)
    assert torch.equal(labels_f, labels)
    assert torch.allclose(boxes_f[..., 0], -boxes[..., 2], atol=1e-4)
    assert torch.allclose(boxes_f[..., 2], -boxes[..., 0], atol=1e-4)
    from fastai.torch_core import set_seed

    set_seed(0)  # fastai draws its batch transforms from torch's global RNG
    _x, boxes_l, _labels = load_covid_xray("fastai", **options, augment="light").train.one_batch()
    assert boxes_l.shape == boxes.shape and not torch.allclose(boxes_l, boxes)  # fastai's affine moved them
