"""The annotated X-ray portal sets synced from their miniatures through the loopback portal, served by the loaders.

COVID-QU-Ex (Kaggle dataset), SIIM-FISABIO-RSNA (Kaggle competition) and MIDRC-RICORD-1c (TCIA) are
pinned and fetched from a loopback server as users get them, then built into a manifest: each
mask set comes out of ``task="segmentation"`` aligned with its image (a flip moves both), SIIM's
boxes out of ``task="detection"`` in torch, TensorFlow and fastai as the ``label`` column says,
and SIIM's re-encoding of a RICORD picture shares its duplicate group and split group.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from covid19_images import load_covid_xray
from covid19_images.manifest.build import build_manifest, write_manifest
from covid19_images.sources.registry import load_registry
from covid19_images.testing.portal_miniatures import fetched_miniature_root
from covid19_images.testing.portal_server import running_with_kaggle_token
from tests.loaders.test_loaders_common import run_python

QU, SIIM, RICORD = "covid-qu-ex", "siim-covid19-detection", "midrc-ricord-1c"
SIZE = 64
pytestmark = pytest.mark.xdist_group("annotated-xray-portal")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    warnings.simplefilter("ignore")
    root = tmp_path_factory.mktemp("annotated-xray") / "root"
    with running_with_kaggle_token("annotated-token") as server:  # the Kaggle API token, as users set it
        fetched_miniature_root(root, server, [QU, SIIM, RICORD])
    write_manifest(root, build_manifest(root, load_registry(root), progress=False))
    yield root


def manifest(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "manifests/manifest.csv", dtype=str, keep_default_na=False)


def annotations(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "manifests/annotations.csv", dtype=str, keep_default_na=False)


def test_each_set_is_pinned_fetched_and_built_from_the_portal(root: Path) -> None:
    rows = manifest(root)
    for name in (QU, SIIM, RICORD):
        assert (root / "manifests/locks" / f"{name}.lock.tsv").is_file()
        folder = root / "datasets" / name
        assert (folder / ".covid19-images-fetched").is_file()
        pictures = [p for p in folder.rglob("*") if p.suffix in (".png", ".dcm") and p.parent.name != "lung masks"
                    and p.parent.name != "infection masks"]  # fmt: skip
        assert len(rows[rows["source"] == name]) == len(pictures) > 0
    notes = annotations(root)
    qu = notes[notes["source"] == QU]
    masks = [p for p in (root / "datasets" / QU).rglob("*.png") if p.parent.name.endswith("masks")]
    mask_paths = {f"datasets/{QU}/" + p.relative_to(root / "datasets" / QU).as_posix() for p in masks}
    assert set(qu["path"]) == mask_paths and set(qu["name"]) == {"lung", "infection"}
    # the Infection set's copy of a Lung set picture gets both sets' masks (spread through its duplicate group)
    by_id = rows.set_index("image_id")
    for path, image_id in zip(qu["path"], qu["image_id"], strict=True):
        own = path.replace("/lung masks/", "/images/").replace("/infection masks/", "/images/")
        own_row = rows[rows["path"] == own].iloc[0]
        assert image_id == own_row["image_id"] or by_id.loc[image_id, "dup_group"] == own_row["dup_group"] != ""
    siim = notes[notes["source"] == SIIM]
    with open(root / "datasets" / SIIM / "train_image_level.csv", newline="") as handle:
        groups = sum(row["label"].split().count("opacity") for row in csv.DictReader(handle))
    own = siim[siim["image_id"].isin(rows.loc[rows["source"] == SIIM, "image_id"])]
    assert (own["kind"] == "box").sum() == groups  # every box of the label column (each image is here)
    spread = siim[~siim.index.isin(own.index)]  # to RICORD's same-size copy of the atypical picture only
    assert set(rows.set_index("image_id").loc[spread["image_id"], "source"]) == {RICORD}
    assert set(siim.loc[siim["kind"] == "finding", "name"]) == {
        "negative_for_pneumonia", "typical_appearance", "indeterminate_appearance", "atypical_appearance",
        "opacity"}  # fmt: skip


@pytest.mark.parametrize(("mask_source", "name"), [("covid-qu-ex", "lung"), ("covid-qu-ex-infection", "infection")])
def test_covid_qu_ex_masks_are_served_aligned_and_flip_with_the_image(root: Path, mask_source: str, name: str) -> None:
    options = {"root": root, "split": None, "task": "segmentation", "mask_source": mask_source, "image_size": SIZE}
    plain = load_covid_xray(**options)
    flipped = load_covid_xray(**options, transform=v2.RandomHorizontalFlip(p=1.0))
    notes = annotations(root)
    wanted = notes[(notes["source"] == QU) & (notes["name"] == name)]
    stored = dict(zip(wanted["image_id"], wanted["path"], strict=True))
    assert len(plain) and set(plain.manifest["image_id"]) <= set(stored)
    assert plain.target_classes == ["background", name]
    drawn = 0
    for index in range(len(plain)):
        image, mask = plain[index]
        image_f, mask_f = flipped[index]
        expected = np.asarray(Image.open(root / stored[plain.manifest["image_id"].iloc[index]]).resize(
            (SIZE, SIZE), Image.Resampling.NEAREST))  # fmt: skip
        assert np.array_equal(mask.numpy(), (expected == 255).astype(np.uint8))
        assert torch.equal(image_f, image.flip(-1)) and torch.equal(mask_f, mask.flip(-1))
        drawn += int(bool((mask == 1).any()) and not torch.equal(mask_f, mask))
    assert drawn >= 1  # a drawn mask is not mirror-symmetric: the flip moved it


def label_column_boxes(root: Path) -> dict[str, list[list[float]]]:
    """image file stem -> the opacity corners of its ``label`` field, read here from the CSV."""
    found = {}
    with open(root / "datasets" / SIIM / "train_image_level.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            words = row["label"].split()
            found[row["id"].removesuffix("_image")] = [
                [float(w) for w in words[i + 2 : i + 6]] for i in range(0, len(words), 6) if words[i] == "opacity"
            ]
    return found


def same_boxes(got, want, tolerance: float) -> bool:
    """The same boxes in any order, corners within ``tolerance``."""
    a, b = sorted(map(list, got)), sorted(map(list, want))
    return len(a) == len(b) and all(
        abs(p - q) <= tolerance for u, v in zip(a, b, strict=True) for p, q in zip(u, v, strict=True)
    )


def scaled(box: list[float], width: int, height: int) -> list[float]:
    return [box[0] * SIZE / width, box[1] * SIZE / height, box[2] * SIZE / width, box[3] * SIZE / height]


def test_siim_boxes_served_by_torch_are_the_label_column_scaled_and_flip_with_the_image(root: Path) -> None:
    options = {"root": root, "split": None, "task": "detection", "sources": [SIIM], "image_size": SIZE}
    plain = load_covid_xray(**options)
    flipped = load_covid_xray(**options, transform=v2.RandomHorizontalFlip(p=1.0))
    expected = label_column_boxes(root)
    for index, row in enumerate(plain.manifest.itertuples()):
        image, target = plain[index]
        header = pydicom.dcmread(root / row.path, stop_before_pixels=True)
        width, height = int(header.Columns), int(header.Rows)
        want = [scaled(b, width, height) for b in expected[Path(row.path).stem]]
        assert same_boxes(target["boxes"].tolist(), want, 1e-3)
        assert set(target["labels"].tolist()) == {3}  # BOX_CLASSES index of lung_opacity
        image_f, target_f = flipped[index]
        assert torch.equal(image_f, image.flip(-1))
        mirrored = [[SIZE - b[2], b[1], SIZE - b[0], b[3]] for b in want]
        assert same_boxes(target_f["boxes"].tolist(), mirrored, 1e-3)
    assert {Path(p).stem for p in plain.manifest["path"]} == {k for k, v in expected.items() if v} & {
        Path(p).stem for p in manifest(root)["path"]}  # fmt: skip


TF_SCRIPT = r"""
import json, sys
from covid19_images import load_covid_xray
root = sys.argv[1]
ds = load_covid_xray("tf", root=root, split=None, task="detection", sources=["siim-covid19-detection"], image_size=64)
out = {"paths": ds.manifest["path"].tolist(), "format": ds.bounding_box_format}
out["boxes"] = [t["boxes"].tolist() for _, t in ds.as_numpy_iterator()]
out["labels"] = [t["labels"].tolist() for _, t in ds.as_numpy_iterator()]
print(json.dumps(out))
"""


@pytest.mark.framework
@pytest.mark.xdist_group("loaders-tf")
def test_siim_boxes_served_by_tensorflow_are_the_label_column_scaled(root: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    done = run_python(f"import sys; sys.argv = ['x', {str(root)!r}]\n" + TF_SCRIPT, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["format"] == "xyxy" and out["paths"]
    expected = label_column_boxes(root)
    for path, boxes, labels in zip(out["paths"], out["boxes"], out["labels"], strict=True):
        header = pydicom.dcmread(root / path, stop_before_pixels=True)
        want = [scaled(b, int(header.Columns), int(header.Rows)) for b in expected[Path(path).stem]]
        assert same_boxes(boxes, want, 1e-3) and set(labels) == {3}


@pytest.mark.framework
def test_siim_boxes_served_by_fastai_are_the_label_column_in_minus_one_one(root: Path) -> None:
    pytest.importorskip("fastai")
    served = load_covid_xray("fastai", root=root, task="detection", sources=[SIIM], image_size=SIZE, bs=8,
                             num_workers=0, shuffle=False)  # fmt: skip
    assert list(served.vocab)[-1] == "lung_opacity"
    expected = label_column_boxes(root)
    items = pd.concat([served.train_ds.items, served.valid_ds.items])
    assert len(items) == len({Path(p).stem for p in items["path"]} & {k for k, v in expected.items() if v})
    for loader in (served.train.new(shuffle=False, drop_last=False), served.valid):
        _x, boxes, labels = loader.one_batch()
        for k, row in enumerate(loader.dataset.items.itertuples()):
            header = pydicom.dcmread(root / row.path, stop_before_pixels=True)
            w, h = int(header.Columns), int(header.Rows)
            want = [[b[0] / w * 2 - 1, b[1] / h * 2 - 1, b[2] / w * 2 - 1, b[3] / h * 2 - 1]
                    for b in expected[Path(row.path).stem]]  # fmt: skip
            pairs = [(b, c) for b, c in zip(boxes[k].tolist(), labels[k].tolist(), strict=True) if c != 0]  # bb_pad: 0
            assert same_boxes([b for b, _c in pairs], want, 1e-4)
            assert {c for _b, c in pairs} == {list(served.vocab).index("lung_opacity")}


def test_siim_copy_of_a_ricord_picture_shares_its_duplicate_and_split_group(root: Path) -> None:
    rows = manifest(root)
    siim, ricord = rows[rows["source"] == SIIM], rows[rows["source"] == RICORD]
    joined = siim[siim["dup_group"].isin(set(ricord["dup_group"]) - {""})]
    assert len(joined) == 1  # the atypical study's image re-encodes a RICORD-1c picture (miniature recipe)
    twin = ricord[ricord["dup_group"] == joined["dup_group"].iloc[0]]
    assert len(twin) == 1 and twin["split_group"].iloc[0] == joined["split_group"].iloc[0]
    assert twin["split"].iloc[0] == joined["split"].iloc[0]
    assert not (set(siim["split_group"]) - set(joined["split_group"])) & set(ricord["split_group"])
