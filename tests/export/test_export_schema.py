"""Each export documents its own schema where its readers look, and its records are typed:
``datasets`` loads the HF card without a warning, WebDataset JSON holds numbers as numbers and
the exported image's size, TFRecord's feature spec in export.json is the records' real one."""

from __future__ import annotations

import io
import json
import logging
import tarfile
import warnings
from pathlib import Path

import pytest
from PIL import Image

from covid19_images.export import export
from tests.conftest import build_synced_root
from tests.loaders.test_loaders_common import XRAY_SOURCES, run_python

pytestmark = [pytest.mark.upstream, pytest.mark.xdist_group("export")]
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("export-schema"), mirrors, XRAY_SOURCES)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_hf_export_loads_without_a_warning_with_typed_columns(root: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    export(tmp_path / "hf", "hf", root=root, image_size=(48, 64), shard_size=30)
    collect = _Collect()
    logger = logging.getLogger("datasets")
    logger.addHandler(collect)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    finally:
        logger.removeHandler(collect)
    assert not collect.messages, collect.messages
    assert not [str(w.message) for w in caught if "datasets" in w.filename], [str(w.message) for w in caught]
    part = loaded["train"]
    types = {name: getattr(feature, "dtype", None) for name, feature in part.features.items()}
    assert types["width"] == types["height"] == types["frames"] == types["original_width"] == "int64"
    assert types["age"] == "float64" and types["source"] == "string"
    for item in part.select(range(min(5, part.num_rows))):
        assert (item["width"], item["height"]) == item["image"].size == (64, 48)
        assert isinstance(item["original_width"], int) and item["original_width"] > 0
        assert item["age"] is None or isinstance(item["age"], float)


def test_webdataset_json_is_typed_with_the_exported_size(root: Path, tmp_path: Path) -> None:
    export(tmp_path / "wds", "webdataset", root=root, image_size=40, shard_size=50)
    index = json.loads((tmp_path / "wds" / "export.json").read_text())
    declared = index["schema"]["json"]
    seen = 0
    for shard in sorted((tmp_path / "wds").glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name, data in members.items():
            if not name.endswith(".json"):
                continue
            record = json.loads(data)
            assert set(record) == set(declared)
            picture = next(v for k, v in members.items() if k.startswith(name[:-5] + ".") and k.endswith(".png"))
            with Image.open(io.BytesIO(picture)) as image:
                assert (record["width"], record["height"]) == image.size == (40, 40)
            assert isinstance(record["frames"], int) and isinstance(record["label_index"], int)
            assert record["age"] is None or isinstance(record["age"], float)
            assert record["original_width"] is None or isinstance(record["original_width"], int)
            seen += 1
    assert seen > 10


TF_SCHEMA = r"""
import json, sys
import tensorflow as tf
out = sys.argv[1]
schema = json.load(open(out + "/export.json"))["schema"]
record = next(iter(tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(out + "/train-*.tfrecord")))))
example = tf.train.Example.FromString(record.numpy())
real = {k: ("int64" if v.HasField("int64_list") else "bytes") for k, v in example.features.feature.items()}
print("RESULT " + json.dumps({"declared": {k: f["dtype"] for k, f in schema["features"].items()}, "real": real}))
namespace = {"json": json, "tf": tf, "record": record}
import os
os.chdir(out)
exec(schema["parse"], namespace)  # the documented way to read it back
print("IMAGE " + json.dumps(list(namespace["image"].shape)))
"""


def test_tfrecord_feature_spec_is_in_export_json_datasheet_and_readme(root: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    export(tmp_path / "tfr", "tfrecord", root=root, image_size=32, shard_size=50)
    result = run_python(TF_SCHEMA.replace("sys.argv[1]", repr(str(tmp_path / "tfr"))), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))[7:])
    assert found["declared"] == found["real"]
    assert json.loads(next(x for x in result.stdout.splitlines() if x.startswith("IMAGE "))[6:]) == [32, 32, 3]
    sheet = (tmp_path / "tfr" / "DATASHEET.md").read_text()
    readme = README.read_text()
    for name, dtype in found["real"].items():
        assert f"| `{name}` | {dtype} |" in sheet
        if not name.startswith("meta/"):
            assert f"`{name}`" in readme, f"README does not document {name}"
