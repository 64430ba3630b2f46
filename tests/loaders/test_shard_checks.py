"""An export's shards are checked against its export.json before anything is served: cut shards,
a sample of another split, one key in two shards, shards of another export, a damaged index."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from covid19_images.export import export
from covid19_images.loaders.shards import DamagedExport, resolve_shards
from tests.conftest import build_synced_root

pytestmark = [pytest.mark.upstream, pytest.mark.xdist_group("export")]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    base = tmp_path_factory.mktemp("shard-checks")
    root = build_synced_root(base, mirrors, ["darshan-xray", "figure1-xray"])
    export(base / "wds", "webdataset", root=root, image_size=16, shard_size=5)
    export(base / "no-covid", "webdataset", root=root, image_size=16, shard_size=5, labels=["normal", "pneumonia"])
    return base


@pytest.fixture
def shards(exports: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "wds"
    shutil.copytree(exports / "wds", copy)
    return copy


def _members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


def _write(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_an_intact_export_resolves(shards: Path) -> None:
    urls, counts, classes = resolve_shards(str(shards), "train", "webdataset")
    assert len(urls) == len(counts) > 1 and classes


def test_a_shard_cut_at_a_member_boundary_is_refused_naming_it(shards: Path) -> None:
    first = sorted(shards.glob("train-*.tar"))[0]
    members = _members(first)
    _write(first, members[:-3])  # the last sample gone: a tar that still reads
    with pytest.raises(DamagedExport, match=f"{first.name} holds 4 samples, export.json declares 5"):
        resolve_shards(str(shards), "train", "webdataset")


def test_a_test_sample_in_a_train_shard_is_refused(shards: Path) -> None:
    train, test = sorted(shards.glob("train-*.tar"))[0], sorted(shards.glob("test-*.tar"))[0]
    stolen = _members(test)[:3]  # one sample (cls, image, json) moved from test to train
    _write(train, _members(train)[:-3] + stolen)
    _write(test, _members(test)[3:])
    index = json.loads((shards / "export.json").read_text())
    index["shards"]["test"][0]["count"] -= 1
    index["counts"]["test"] -= 1
    (shards / "export.json").write_text(json.dumps(index))
    with pytest.raises(DamagedExport, match=r"is a 'test' sample in a 'train' shard"):
        resolve_shards(str(shards), "train", "webdataset")


def test_one_key_in_two_shards_is_refused(shards: Path) -> None:
    first, second = sorted(shards.glob("train-*.tar"))[:2]
    _write(second, _members(second)[:-3] + _members(first)[:3])
    with pytest.raises(DamagedExport, match=f"is also in {first.name}"):
        resolve_shards(str(shards), "train", "webdataset")


def test_shards_of_an_export_with_other_classes_are_refused(exports: Path, shards: Path) -> None:
    index = json.loads((shards / "export.json").read_text())
    other = json.loads((exports / "no-covid" / "export.json").read_text())
    assert other["classes"] != index["classes"]
    for shard in shards.glob("train-*.tar"):
        shard.unlink()
    for shard in (exports / "no-covid").glob("train-*.tar"):
        shutil.copy(shard, shards / shard.name)
    index["shards"]["train"] = other["shards"]["train"]
    index["counts"]["train"] = other["counts"]["train"]
    (shards / "export.json").write_text(json.dumps(index))
    with pytest.raises(DamagedExport, match="shards of another export"):
        resolve_shards(str(shards), "train", "webdataset")


@pytest.mark.parametrize("damage", ["empty", "cut", "not an index", "escaping file"])
def test_an_empty_cut_or_foreign_export_json_names_the_file(shards: Path, damage: str) -> None:
    path = shards / "export.json"
    text = path.read_text()
    index = json.loads(text)
    index["shards"]["train"][0]["file"] = "../../etc/passwd"
    path.write_text(
        {"empty": "", "cut": text[: len(text) // 2], "not an index": "[1, 2]", "escaping file": json.dumps(index)}[
            damage
        ]
    )
    with pytest.raises(DamagedExport, match=str(path).replace(".", r"\.")):
        resolve_shards(str(shards), "train", "webdataset")


def _record(data: bytes) -> bytes:
    return len(data).to_bytes(8, "little") + b"\0" * 4 + data + b"\0" * 4


@pytest.mark.parametrize("cut", ["record boundary", "mid-record"])
def test_a_cut_tfrecord_file_is_refused_naming_it(tmp_path: Path, cut: str) -> None:
    """The record framing is checked without TensorFlow: TF itself serves 83 of 90 or raises a
    DataLossError naming no file."""
    records = b"".join(_record(bytes([i]) * 40) for i in range(5))
    name = "train-00000-of-00001.tfrecord"
    (tmp_path / name).write_bytes(records[: 4 * 56] if cut == "record boundary" else records[:-10])
    index = {
        "format": "tfrecord",
        "classes": ["a"],
        "counts": {"train": 5},
        "shards": {"train": [{"file": name, "count": 5}]},
    }
    (tmp_path / "export.json").write_text(json.dumps(index))
    message = "holds 4 records, export.json declares 5" if cut == "record boundary" else "record 4 is cut"
    with pytest.raises(DamagedExport, match=message):
        resolve_shards(str(tmp_path), "train", "tfrecord")
