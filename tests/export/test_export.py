"""``covid19-images export`` on the real samples: every format holds exactly the loaders' rows,
splits stay apart, the bytes are deterministic and each ecosystem's own reader opens it."""

from __future__ import annotations

import filecmp
import importlib.util
import json
import os
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from covid19_images.cli import main
from covid19_images.export import export
from covid19_images.loaders import load_manifest
from covid19_images.loaders._options import make_options
from covid19_images.loaders._select import NoItemsError, select
from tests.conftest import build_synced_root
from tests.loaders.test_loaders_common import XRAY_SOURCES, run_python

pytestmark = [pytest.mark.upstream, pytest.mark.xdist_group("export")]
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("export"), mirrors, XRAY_SOURCES)


def loader_rows(root: Path, split: str, **filters) -> pd.DataFrame:
    """What the loaders serve for ``split`` (their own selection, default options); none if they refuse."""
    try:
        return select(load_manifest(root), make_options("xray", root=root, split=split, **filters)).items
    except NoItemsError:  # a small sample can leave a split empty under filters: the export must be empty too
        return pd.DataFrame(columns=["image_id"])


def exported(directory: Path) -> pd.DataFrame:
    return pd.read_csv(directory / "manifest.csv", dtype=str, keep_default_na=False)


def files_of(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def assert_same_tree(a: Path, b: Path) -> None:
    names = files_of(a)
    assert names == files_of(b) and names
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert not mismatch and not errors


@pytest.mark.parametrize(
    ("fmt", "size", "filters"),
    [
        ("imagefolder", None, {}),
        ("webdataset", None, {}),
        ("hf", 48, {}),
        ("webdataset", 32, {"sources": ["zhanglab-pediatric-xray", "figure1-xray"], "labels": ["normal", "covid-19"]}),
    ],
)
def test_exported_rows_per_split_equal_the_loaders(root: Path, tmp_path: Path, fmt, size, filters) -> None:
    result = export(tmp_path / "out", fmt, root=root, image_size=size, shard_size=7, **filters)
    rows = exported(tmp_path / "out")
    for split in SPLITS:
        served = loader_rows(root, split, **filters)
        mine = rows[rows["split"] == split]
        assert result.counts.get(split, 0) == len(mine) == len(served)
        assert sorted(mine["image_id"]) == sorted(served["image_id"])
        assert set(mine["label_index"].astype(int)) <= set(range(len(result.classes)))
    assert "unknown" not in set(rows["label"])
    sheet = (tmp_path / "out" / "DATASHEET.md").read_text()
    assert "research use only" in sheet and "### Citations" in sheet and "### Attribution list" in sheet
    for source in set(rows["source"]):
        assert source in sheet
    for commit in set(rows["source_commit"]):
        assert commit in sheet


def test_no_split_group_crosses_splits_and_each_shard_holds_one_split(root: Path, tmp_path: Path) -> None:
    export(tmp_path / "wds", "webdataset", root=root, shard_size=5)
    rows = exported(tmp_path / "wds")
    assert rows.groupby("split_group")["split"].nunique().max() == 1
    seen = 0
    for shard in sorted((tmp_path / "wds").glob("*.tar")):
        split = shard.name.split("-")[0]
        with tarfile.open(shard) as tar:
            members = tar.getmembers()
            assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and not m.uname for m in members)
            records = [json.loads(tar.extractfile(m).read()) for m in members if m.name.endswith(".json")]
            labels = [int(tar.extractfile(m).read()) for m in members if m.name.endswith(".cls")]
        assert 0 < len(records) <= 5 and {r["split"] for r in records} == {split}
        assert labels == [r["label_index"] for r in records]
        seen += len(records)
    assert seen == len(rows)


@pytest.mark.parametrize("fmt", ["imagefolder", "webdataset", "hf"])
def test_two_exports_are_byte_identical(root: Path, tmp_path: Path, fmt: str) -> None:
    export(tmp_path / "a", fmt, root=root, image_size=40, shard_size=9)
    export(tmp_path / "b", fmt, root=root, image_size=40, shard_size=9)
    assert_same_tree(tmp_path / "a", tmp_path / "b")


def test_imagefolder_copies_originals_and_torchvision_reads_it(root: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("torchvision.datasets")
    export(tmp_path / "if", "imagefolder", root=root)
    rows = exported(tmp_path / "if")
    for _, row in rows.head(10).iterrows():
        copy = tmp_path / "if" / row["export_path"]
        assert copy.read_bytes() == (root / row["path"]).read_bytes()
        assert not os.path.samefile(copy, root / row["path"])  # a copy, never a way back into datasets/
    for split in SPLITS:
        folder = datasets.ImageFolder(str(tmp_path / "if" / split))
        mine = rows[rows["split"] == split]
        assert len(folder) == len(mine)
        assert sorted(folder.classes) == sorted(set(mine["label"]))
        image, index = folder[0]
        assert image.size[0] > 0 and folder.classes[index] in set(mine["label"])


def card_header_of(readme: Path) -> dict:
    """The card's YAML header, read the way the Hub's client does (huggingface_hub) when installed."""
    if importlib.util.find_spec("huggingface_hub") is not None:
        from huggingface_hub import DatasetCard

        return DatasetCard.load(readme).data.to_dict()
    import yaml

    text = readme.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("\n---\n", 1)[0][4:])


def catalog_citations() -> dict[str, str]:
    """Every catalog source's citation, straight from its source.yaml."""
    import yaml

    catalog = Path(__file__).resolve().parents[2] / "src/covid19_images/sources/catalog"
    specs = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(catalog.glob("*/source.yaml"))]
    return {spec["name"]: str(spec.get("citation", "")).strip() for spec in specs}


def test_datasets_load_dataset_reads_the_hf_export(root: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    result = export(tmp_path / "hf", "hf", root=root, image_size=64, shard_size=30)
    header = card_header_of(tmp_path / "hf" / "README.md")
    assert header["license"] == "other" and header["task_categories"] == ["image-classification"]
    catalog = catalog_citations()
    sources = sorted(set(exported(tmp_path / "hf")["source"]))
    assert len(sources) >= 2
    cited = {entry["source"]: entry["citation"] for entry in header["source_citations"]}
    assert sorted(cited) == sources
    body = (tmp_path / "hf" / "README.md").read_text().split("\n---\n", 1)[1]
    for source in sources:
        assert cited[source] == catalog[source] and catalog[source]
        assert catalog[source] in body  # still in the card's body too
    loaded = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    rows = exported(tmp_path / "hf")
    assert set(loaded) == set(result.counts)
    for split, count in result.counts.items():
        part = loaded[split]
        assert part.num_rows == count
        assert part.features["label"].names == list(result.classes)
        assert part["image_id"] == rows.loc[rows["split"] == split, "image_id"].tolist()
        item = part[0]
        assert item["image"].size == (64, 64)
        assert result.classes[item["label"]] == item["label_name"]


def test_cli_export_with_filters_and_refusal_to_overwrite(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["export", "--root", str(root), "--out", str(out), "--format", "webdataset"]
    first = CliRunner().invoke(main, [*args, "--sources", "darshan-xray", "--image-size", "32"])
    assert first.exit_code == 0, first.output
    rows = exported(out)
    assert set(rows["source"]) == {"darshan-xray"}
    assert len(rows) == sum(len(loader_rows(root, s, sources=["darshan-xray"])) for s in SPLITS)
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "not empty" in again.output


TF_EXPORT = r"""
import json, sys
from covid19_images.export import export
root, out = sys.argv[1], sys.argv[2]
a = export(out + "/a", "tfrecord", root=root, image_size=48, shard_size=20)
export(out + "/b", "tfrecord", root=root, image_size=48, shard_size=20)
import tensorflow as tf
spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string), "image/class/label": tf.io.FixedLenFeature([], tf.int64),
        "image/id": tf.io.FixedLenFeature([], tf.string)}
found = {}
for split in a.counts:
    files = sorted(tf.io.gfile.glob(out + f"/a/{split}-*.tfrecord"))
    ids, shapes = [], set()
    for record in tf.data.TFRecordDataset(files):
        ex = tf.io.parse_single_example(record, spec)
        ids.append(ex["image/id"].numpy().decode())
        shapes.add(tuple(tf.io.decode_image(ex["image/encoded"]).shape[:2]))
    found[split] = {"ids": ids, "files": len(files), "shapes": sorted(shapes)}
print("RESULT " + json.dumps(found))
"""


def test_tfrecord_export_is_read_by_tensorflow_and_deterministic(root: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    script = TF_EXPORT.replace("sys.argv[1], sys.argv[2]", f"{str(root)!r}, {str(tmp_path)!r}")
    result = run_python(script, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))[7:])
    rows = exported(tmp_path / "a")
    for split in SPLITS:
        assert found[split]["ids"] == rows.loc[rows["split"] == split, "image_id"].tolist()
        assert found[split]["ids"] and found[split]["shapes"] == [[48, 48]]
    assert found["train"]["files"] == -(-len(loader_rows(root, "train")) // 20) >= 2
    assert_same_tree(tmp_path / "a", tmp_path / "b")


def test_ct_dicom_is_exported_as_png_with_the_loaders_pixels(tmp_path: Path, mirrors: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    from covid19_images.loaders._pixels import load_item

    ct_root = build_synced_root(tmp_path, mirrors, ["covid19-pos-case"])
    export(tmp_path / "ct", "webdataset", root=ct_root, modality="ct", image_size=32, shard_size=50)
    rows = exported(tmp_path / "ct")
    manifest = load_manifest(ct_root)
    for split in set(rows["split"]):
        served = select(manifest, make_options("ct", root=ct_root, split=split)).items
        assert len(rows[rows["split"] == split]) == len(served) > 0
    everything = select(manifest, make_options("ct", root=ct_root, split=None)).items
    assert len(rows) == everything["split"].isin(SPLITS).sum()
    first = rows.iloc[0]
    shard, member = first["export_path"].split("/")
    assert member.endswith(".png") and first["format"] == "dicom"
    with tarfile.open(tmp_path / "ct" / shard) as tar:
        stored = np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())))
    expected = load_item(str(ct_root / first["path"]), int(first["frame"]), "dicom", (32, 32), 3)
    assert stored.shape == (32, 32) and np.array_equal(stored, expected[..., 0])


@pytest.mark.parametrize("scheme", ["loso:figure1-xray", "official"])
def test_exports_under_other_split_schemes_hold_the_loaders_rows_and_drop_rows_without_a_split(
    root: Path, tmp_path: Path, scheme: str
) -> None:
    result = export(tmp_path / "out", "webdataset", root=root, split_scheme=scheme, image_size=16, shard_size=10)
    rows = exported(tmp_path / "out")
    everything = select(load_manifest(root), make_options("xray", root=root, split=None, split_scheme=scheme)).items
    without_split = int((~everything["split"].isin(SPLITS)).sum())
    assert len(rows) == len(everything) - without_split and set(rows["split"]) <= set(SPLITS)
    if scheme == "official":
        assert without_split > 0  # sources without an official split have rows the export must leave out
    for split in SPLITS:
        served = loader_rows(root, split, split_scheme=scheme)
        assert sorted(rows.loc[rows["split"] == split, "image_id"]) == sorted(served["image_id"])
        assert result.counts.get(split, 0) == len(served)
    index = json.loads((tmp_path / "out" / "export.json").read_text())
    assert index["split_scheme"] == scheme
    assert {split: sum(s["count"] for s in shards) for split, shards in index["shards"].items()} == result.counts


def test_an_export_under_the_covidx_scheme_holds_what_covidx_lists_and_nothing_else(
    tmp_path: Path, mirrors: Path
) -> None:
    """COVIDx lists train and test only (no val); the rows it does not list have no split and are
    left out. Expected splits come from the label files themselves, read here."""
    source = "ieee8023-covid-chestxray"
    covidx_root = build_synced_root(tmp_path / "covidx", mirrors, (source, "covidx-splits"))
    listed: dict[str, str] = {}
    labels = covidx_root / "datasets" / "covidx-splits" / "labels"
    newest = max(
        (p.name.split("_COVIDx")[1][:-4] for p in labels.glob("train_COVIDx*A.txt")), key=lambda v: int(v[:-1])
    )
    for split in ("train", "test"):
        for line in (labels / f"{split}_COVIDx{newest}.txt").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[-1] == "cohen":  # COVIDx's name for the ieee8023 source
                listed[fields[-3]] = split
    manifest = load_manifest(covidx_root)
    held = {Path(p).name: split for p in manifest["path"] if (split := listed.get(Path(p).name))}
    assert len(held) >= 5, "too few listed images to prove anything"

    result = export(tmp_path / "out", "webdataset", root=covidx_root, split_scheme="covidx", image_size=16)
    rows = exported(tmp_path / "out")
    exported_splits = {Path(p).name: s for p, s in zip(rows["path"], rows["split"], strict=True)}
    assert exported_splits == held  # exactly the listed images, each in its COVIDx split
    assert len(manifest) > len(rows)  # the sample holds images COVIDx does not list: left out
    assert result.counts == {s: sum(1 for v in held.values() if v == s) for s in set(held.values())}
    for split in ("train", "test"):
        served = loader_rows(covidx_root, split, split_scheme="covidx")
        assert sorted(rows.loc[rows["split"] == split, "image_id"]) == sorted(served["image_id"])
    index = json.loads((tmp_path / "out" / "export.json").read_text())
    assert index["split_scheme"] == "covidx" and set(index["shards"]) == set(held.values())
