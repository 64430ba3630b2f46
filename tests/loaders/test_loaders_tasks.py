"""task= and target= on the samples (real or miniature): only annotated images, targets from the annotation files,
and the same geometric transform on image and mask/boxes."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from covid19_images import load_covid_xray
from covid19_images.loaders import NoItemsError, load
from tests.conftest import build_synced_root, csv_rows_with_lines

SOURCES = ["ieee8023-covid-chestxray", "brixia-score", "v7labs-lung-masks"]
SIZE = 224


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    warnings.simplefilter("ignore")
    return build_synced_root(tmp_path_factory.mktemp("tasks"), mirrors, SOURCES)


def annotations(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "manifests/annotations.csv", dtype=str, keep_default_na=False)


@pytest.mark.upstream
def test_segmentation_serves_masks_of_annotated_images_read_from_the_png(root: Path) -> None:
    ds = load_covid_xray(root=root, split=None, task="segmentation", mask_source="v7labs")
    rows = annotations(root)
    v7 = rows[rows["source"] == "v7labs-lung-masks"]
    masks = dict(zip(v7["image_id"], v7["path"], strict=False))
    assert len(ds) and set(ds.manifest["image_id"]) <= set(masks)
    assert ds.target_classes == ["background", "lung"]
    for index in range(len(ds)):
        image, mask = ds[index]
        assert image.shape == (3, SIZE, SIZE) and mask.shape == (SIZE, SIZE) and mask.dtype == torch.uint8
        stored = Image.open(root / masks[ds.manifest["image_id"].iloc[index]])
        expected = np.asarray(stored.resize((SIZE, SIZE), Image.Resampling.NEAREST))
        # V7: 0 background -> 0, 255 lung -> 1, 127 ignore (devices) -> 255
        mapped = np.select([expected == 255, expected == 127], [1, 255], 0)
        assert np.array_equal(mask.numpy(), mapped)
        assert (mask == 1).any()


@pytest.mark.upstream
def test_horizontal_flip_reaches_image_and_mask(root: Path) -> None:
    plain = load_covid_xray(root=root, split=None, task="segmentation")
    flipped = load_covid_xray(root=root, split=None, task="segmentation", transform=v2.RandomHorizontalFlip(p=1.0))
    for index in range(len(plain)):
        image, mask = plain[index]
        image_f, mask_f = flipped[index]
        assert torch.equal(image_f, image.flip(-1)) and torch.equal(mask_f, mask.flip(-1))
        assert not torch.equal(mask_f, mask)  # lungs are not mirror-symmetric pixel for pixel


@pytest.mark.upstream
def test_lungvae_masks_are_another_mask_set(root: Path) -> None:
    ds = load_covid_xray(root=root, split=None, task="segmentation", mask_source="lungvae")
    rows = annotations(root)
    model = rows[(rows["rater"] == "model") & (rows["kind"] == "mask")]
    assert len(ds) and set(ds.manifest["image_id"]) <= set(model["image_id"])
    assert {int(v) for v in torch.unique(ds[0][1])} <= {0, 1}


@pytest.mark.upstream
def test_severity_serves_the_brixia_csv_value(root: Path, shared: Path) -> None:
    scores = {
        r["filename"]: r for _, r in csv_rows_with_lines(
            shared / "BrixIA-Brixia-score-COVID-19/data/public-annotations.csv", encoding="utf-8-sig"
        )
    }  # fmt: skip
    senior = load_covid_xray(root=root, split=None, task="severity")
    mean = load_covid_xray(root=root, split=None, task="severity", score="brixia_C", rater="mean")
    held = list((shared / "BrixIA-Brixia-score-COVID-19/data/public-cohen-subset").iterdir())
    assert len(senior) >= len(held) > 0  # the BrixIA copies are served although their label is unknown
    for index in range(len(senior)):
        name = Path(senior.manifest["path"].iloc[index]).name
        _image, value = senior[index]
        assert isinstance(value, float) and value == float(scores[name]["S-Global"])
    for index in range(len(mean)):
        name = Path(mean.manifest["path"].iloc[index]).name
        assert mean[index][1] == pytest.approx((int(scores[name]["S-C"]) + int(scores[name]["J-C"])) / 2)
    served = set(senior.manifest["dup_group"]) - {""}
    assert len(served) == len(senior.manifest[senior.manifest["dup_group"] != ""])  # one image per group


@pytest.mark.upstream
def test_detection_boxes_scale_with_the_image_and_flip_with_it(root: Path, shared: Path) -> None:
    data = json.loads(
        (
            shared / "ieee8023-covid-chestxray-dataset/annotations/imageannotation_ai_lung_bounding_boxes.json"
        ).read_text()
    )
    names = {i["id"]: i["file_name"] for i in data["images"]}
    coco = {(names[a["image_id"]], a["category_id"]): a["bbox"] for a in data["annotations"]}
    ds = load_covid_xray(root=root, split=None, task="detection")
    flipped = load_covid_xray(root=root, split=None, task="detection", transform=v2.RandomHorizontalFlip(p=1.0))
    assert len(ds)
    for index in range(len(ds)):
        row = ds.manifest.iloc[index]
        _image, target = ds[index]
        width, height = int(row["width"]), int(row["height"])
        name = Path(row["path"]).name
        for box, label in zip(target["boxes"].tolist(), target["labels"].tolist(), strict=True):
            x, y, w, h = coco[(name, int(label))]  # labels: 1 right lung, 2 left lung = COCO category ids
            expected = [x * SIZE / width, y * SIZE / height, (x + w) * SIZE / width, (y + h) * SIZE / height]
            assert box == pytest.approx(expected, abs=1e-3)
        _f, target_f = flipped[index]
        boxes = target["boxes"].clone()
        assert torch.allclose(target_f["boxes"][:, 0], SIZE - boxes[:, 2])
        assert torch.allclose(target_f["boxes"][:, 2], SIZE - boxes[:, 0])


@pytest.mark.upstream
def test_multilabel_vector_follows_the_finding(root: Path, shared: Path) -> None:
    from covid19_images.loaders.tasks import MULTILABEL_VOCABULARY

    ds = load_covid_xray(root=root, split=None, target="multilabel", deduplicate=False)
    vocabulary = list(MULTILABEL_VOCABULARY)
    assert ds.target_classes == vocabulary and "Cardiomegaly" in vocabulary and "COVID-19" in vocabulary
    findings = ds.manifest["finding"].tolist()
    assert "todo" not in findings
    for index, finding in enumerate(findings):
        _image, vector = ds[index]
        on = {vocabulary[i] for i in torch.nonzero(vector).flatten().tolist()}
        if finding == "No Finding":
            assert on == set()
        elif finding == "COVID-19, ARDS":
            assert on == {"COVID-19", "ARDS"}
        elif finding in ("COVID-19", "SARS", "Pneumocystis", "Streptococcus", "Klebsiella", "Legionella"):
            assert on == {finding}
    assert "No Finding" in findings or "COVID-19" in findings


def test_task_options_are_validated_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown task"):
        load("xray", task="segment", root=tmp_path)
    with pytest.raises(ValueError, match='only apply to task="severity"'):
        load("xray", score="brixia_A", root=tmp_path)
    with pytest.raises(ValueError, match="has raters"):
        load("xray", task="severity", score="opacity_mean", rater="senior", root=tmp_path)
    with pytest.raises(ValueError, match="unknown mask_source"):
        load("xray", task="segmentation", mask_source="v7", root=tmp_path)
    with pytest.raises(ValueError, match="need volumes=True"):
        load("ct", spacing=1.0, root=tmp_path)


TF_SCRIPT = r"""
import json, sys
import numpy as np
from covid19_images import load_covid_xray
root = sys.argv[1]
out = {}
seg = load_covid_xray("tf", root=root, split=None, task="segmentation")
out["seg_paths"] = seg.manifest["path"].tolist()
out["seg_spec"] = [list(s.shape) + [s.dtype.name] for s in seg.element_spec]
out["masks"] = [np.asarray(m)[:, :, 0].tolist() for _, m in seg.as_numpy_iterator()]
sev = load_covid_xray("tf", root=root, split=None, task="severity", rater="junior")
out["sev_paths"] = sev.manifest["path"].tolist()
out["scores"] = [float(v) for _, v in sev.as_numpy_iterator()]
print(json.dumps(out))
"""


@pytest.mark.framework
@pytest.mark.xdist_group("loaders-tf")
@pytest.mark.upstream
def test_tf_serves_the_same_masks_and_scores_as_torch(root: Path) -> None:
    import importlib.util

    from tests.loaders.test_loaders_common import run_python

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    done = run_python(f"import sys; sys.argv = ['x', {str(root)!r}]\n" + TF_SCRIPT, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    seg = load_covid_xray(root=root, split=None, task="segmentation")
    assert out["seg_paths"] == seg.manifest["path"].tolist()
    assert out["seg_spec"] == [[SIZE, SIZE, 3, "float32"], [SIZE, SIZE, 1, "uint8"]]
    for index, mask in enumerate(out["masks"]):
        assert np.array_equal(np.asarray(mask), seg[index][1].numpy())
    sev = load_covid_xray(root=root, split=None, task="severity", rater="junior")
    assert out["sev_paths"] == sev.manifest["path"].tolist()
    assert out["scores"] == [sev[i][1] for i in range(len(sev))]


@pytest.mark.upstream
def test_a_task_without_annotations_says_so(root: Path) -> None:
    with pytest.raises(NoItemsError, match="with a medseg mask"):
        load("xray", root=root, split=None, task="segmentation", mask_source="medseg")


@pytest.mark.upstream
def test_ultrasound_multilabel_serves_the_rated_pocus_findings(
    tmp_path_factory: pytest.TempPathFactory, mirrors: Path
) -> None:
    from covid19_images import load_covid_ultrasound
    from covid19_images.loaders.tasks import ULTRASOUND_VOCABULARY

    root = build_synced_root(tmp_path_factory.mktemp("pocus-tasks"), mirrors, ["pocus-ultrasound"])
    rows = annotations(root)
    findings = rows[rows["kind"] == "finding"]
    rated = {i: dict(zip(g["name"], g["value"], strict=True)) for i, g in findings.groupby("image_id")}
    ds = load_covid_ultrasound(root=root, split=None, target="multilabel", deduplicate=False, video_frames="middle")
    assert ds.target_classes == list(ULTRASOUND_VOCABULARY)
    assert set(ds.manifest["image_id"]) == set(rated)
    for index in range(len(ds)):
        _image, vector = ds[index]
        sheet = rated[ds.manifest["image_id"].iloc[index]]
        assert vector.tolist() == [1.0 if sheet.get(name) == "1" else 0.0 for name in ULTRASOUND_VOCABULARY]


@pytest.mark.framework
@pytest.mark.upstream
def test_fastai_masks_follow_the_image_through_item_transforms(root: Path) -> None:
    pytest.importorskip("fastai")
    from fastai.vision.augment import FlipItem

    options = {"root": root, "task": "segmentation", "bs": 4, "num_workers": 0, "shuffle": False}
    plain = load_covid_xray("fastai", **options)
    flipped = load_covid_xray("fastai", **options, item_tfms=FlipItem(p=1.0))  # augments the train set
    x, y = plain.train.one_batch()
    x_f, y_f = flipped.train.one_batch()
    assert type(y).__name__ == "TensorMask" and y.shape == (4, SIZE, SIZE)
    assert torch.equal(x_f, x.flip(-1)) and torch.equal(y_f, y.flip(-1))
    assert not torch.equal(y_f, y)
    # the same masks as torch serves for those rows
    torch_ds = load_covid_xray(root=root, split="train", task="segmentation")
    by_path = {p: i for i, p in enumerate(torch_ds.manifest["path"])}
    for k, path in enumerate(plain.train_ds.items["path"].iloc[:4]):
        assert torch.equal(y[k], torch_ds[by_path[path]][1].long())


@pytest.mark.upstream
def test_multilabel_vocabulary_covers_every_nih_finding_string(shared: Path, on_miniature: bool) -> None:
    """Every 'Finding Labels' value of the NIH sample (5,606 rows; the miniature keeps a few, with
    several findings per row) maps to exactly its findings."""
    from covid19_images.loaders.tasks import MULTILABEL_VOCABULARY, finding_terms

    rows = csv_rows_with_lines(shared / "nih-chestxray14-sample/sample_labels.csv")
    assert len(rows) > 5000 or (on_miniature and any("|" in r["Finding Labels"] for _, r in rows))
    for _, row in rows:
        raw = row["Finding Labels"]
        expected = set() if raw == "No Finding" else set(raw.split("|"))
        found = finding_terms(raw)
        assert found is not None and {MULTILABEL_VOCABULARY[i] for i in found} == expected, raw


@pytest.mark.upstream
def test_every_ieee8023_finding_but_todo_names_vocabulary_terms(shared: Path) -> None:
    from covid19_images.loaders.tasks import MULTILABEL_VOCABULARY, finding_terms

    findings = {r["finding"] for _, r in csv_rows_with_lines(shared / "ieee8023-covid-chestxray-dataset/metadata.csv")}
    for finding in findings:
        terms = finding_terms(finding)
        if finding in ("todo", ""):
            assert terms is None
        elif finding == "No Finding":
            assert terms == []
        else:
            named = {MULTILABEL_VOCABULARY[i] for i in terms or []}
            assert named, finding
            # every vocabulary term found is a word of the finding
            assert all(term.lower() in finding.lower() for term in named), (finding, named)
    assert {MULTILABEL_VOCABULARY[i] for i in finding_terms("Mycoplasma Bacterial Pneumonia")} == {
        "Mycoplasma",
        "Bacterial",
        "Pneumonia",
    }
