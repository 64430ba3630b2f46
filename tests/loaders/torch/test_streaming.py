"""Streaming over exported shards, ``with_id`` and augmentation, on the real samples.

The DDP check runs two real ``torch.distributed`` processes (gloo, world size 2), each with
two DataLoader worker processes; TensorFlow runs in its own subprocess (see
tests/loaders/tf/test_adapter.py for why).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from covid19_images import load_covid_xray
from covid19_images.export import export
from tests.conftest import build_synced_root
from tests.loaders.test_loaders_common import XRAY_SOURCES, run_python

torch = pytest.importorskip("torch")
pytest.importorskip("webdataset")
pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("streaming")]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("streaming"), mirrors, XRAY_SOURCES)


@pytest.fixture(scope="module")
def shards(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WebDataset export with uneven shards (7 per file: the last train shard is short)."""
    out = tmp_path_factory.mktemp("wds") / "export"
    export(out, "webdataset", root=root, image_size=32, shard_size=7)
    return out


def exported(directory: Path) -> pd.DataFrame:
    return pd.read_csv(directory / "manifest.csv", dtype=str, keep_default_na=False)


DDP = r"""
import json, os, sys
import torch
import torch.distributed as dist
from covid19_images import load_covid_xray
rank, shards, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=2)
result = {"epochs": [], "lengths": {}, "batches": {}}
ds = load_covid_xray("torch", shards=shards, split="train", with_id=True, seed=11)
for epoch in (0, 1):
    ds.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    result["epochs"].append([i for batch in loader for i in batch[2]])
for mode in ("pad", "drop"):
    even = load_covid_xray("torch", shards=shards, split="train", with_id=True, seed=11, equalize=mode)
    even.num_workers = 2  # len() in the main process then counts what two workers serve
    loader = torch.utils.data.DataLoader(even, batch_size=4, num_workers=2)
    batches = list(loader)
    result["lengths"][mode] = [len(even), sum(len(b[2]) for b in batches)]
    result["batches"][mode] = len(batches)
count = torch.tensor([len(result["epochs"][0])])
dist.all_reduce(count)
result["all_reduced"] = int(count)
dist.destroy_process_group()
with open(out, "w") as handle:
    json.dump(result, handle)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    folder = tmp_path_factory.mktemp("ddp")
    env = {**__import__("os").environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    script = textwrap.dedent(DDP)
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", script, str(rank), str(shards), str(folder / f"{rank}.json")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    return [json.loads((folder / f"{rank}.json").read_text()) for rank in (0, 1)]


def test_two_ranks_with_two_workers_see_every_training_image_once_per_epoch(shards: Path, ddp: list[dict]) -> None:
    train = exported(shards).query("split == 'train'")["image_id"].tolist()
    for epoch in (0, 1):
        a, b = ddp[0]["epochs"][epoch], ddp[1]["epochs"][epoch]
        assert not set(a) & set(b)
        assert sorted(a + b) == sorted(train)
    assert ddp[0]["all_reduced"] == len(train)
    # the seeded per-epoch shuffle changes what a rank reads, identically on both ranks
    assert ddp[0]["epochs"][0] != ddp[0]["epochs"][1]


def test_equalize_gives_every_rank_the_same_number_of_steps(shards: Path, ddp: list[dict]) -> None:
    train = len(exported(shards).query("split == 'train'"))
    for mode in ("pad", "drop"):
        assert ddp[0]["batches"][mode] == ddp[1]["batches"][mode]
        assert ddp[0]["lengths"][mode] == ddp[1]["lengths"][mode]
        length, served = ddp[0]["lengths"][mode]
        assert length == served
    assert 2 * ddp[0]["lengths"]["drop"][0] <= train <= 2 * ddp[0]["lengths"]["pad"][0]


def test_stream_serves_the_exported_labels_and_ids(shards: Path) -> None:
    rows = exported(shards).query("split == 'val'").set_index("image_id")
    ds = load_covid_xray("torch", shards=shards, split="val", with_id=True, image_size=32)
    items = list(ds)
    assert sorted(i for _, _, i in items) == sorted(rows.index)
    for image, label, image_id in items:
        assert tuple(image.shape) == (3, 32, 32) and image.dtype == torch.float32
        assert ds.classes[label] == rows.loc[image_id, "label"]


def test_map_style_with_id_returns_the_manifest_image_id(root: Path) -> None:
    ds = load_covid_xray("torch", root=root, split="test", image_size=32, with_id=True)
    for index in range(len(ds)):
        _, label, image_id = ds[index]
        assert image_id == ds.manifest["image_id"].iloc[index] and ds.targets[index] == label


def _epoch(ds, workers: int) -> torch.Tensor:
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=workers, shuffle=False)
    return torch.cat([batch[0] for batch in loader])


def test_same_seed_same_augmented_tensors_whatever_the_worker_count(root: Path) -> None:
    options = {"root": root, "split": "train", "image_size": 48}
    plain = _epoch(load_covid_xray("torch", **options), 0)
    first = load_covid_xray("torch", augment="light", seed=7, **options)
    again = load_covid_xray("torch", augment="light", seed=7, **options)
    a, b = _epoch(first, 0), _epoch(again, 2)
    assert torch.equal(a, b)
    changed = (a - plain).abs().flatten(1).amax(dim=1) > 0.01
    assert changed.float().mean() > 0.9  # nearly every training image moved or changed contrast
    first.set_epoch(1)
    assert not torch.equal(_epoch(first, 0), a)
    other = load_covid_xray("torch", augment="light", seed=8, **options)
    assert not torch.equal(_epoch(other, 0), a)


def test_validation_items_are_never_augmented_by_default(root: Path, shards: Path) -> None:
    plain = load_covid_xray("torch", root=root, split="val", image_size=48)
    augmented = load_covid_xray("torch", root=root, split="val", image_size=48, augment="light")
    asked = load_covid_xray("torch", root=root, split="val", image_size=48, augment="light", augment_splits="val")
    assert torch.equal(_epoch(plain, 0), _epoch(augmented, 0))
    assert not torch.equal(_epoch(plain, 0), _epoch(asked, 0))
    stream = [x for x, _ in load_covid_xray("torch", shards=shards, split="val", augment="light")]
    same = [x for x, _ in load_covid_xray("torch", shards=shards, split="val")]
    assert all(torch.equal(x, y) for x, y in zip(stream, same, strict=True))


def test_masks_follow_the_geometric_transform() -> None:
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    from covid19_images.loaders.torch.augment import make_torch_augmenter

    mask = torch.zeros(1, 64, 64, dtype=torch.uint8)
    mask[:, 12:40, 20:50] = 1
    image = mask.float().repeat(3, 1, 1)
    augmenter = make_torch_augmenter("light", seed=3)
    moved, target = augmenter(image, {"masks": tv_tensors.Mask(mask)}, key="x:0", epoch=0)
    assert isinstance(target["masks"], tv_tensors.Mask)
    bright, region = moved[0] > 0.5, target["masks"][0].bool()
    assert not torch.equal(region, mask[0].bool())  # it did move
    iou = (bright & region).sum() / (bright | region).sum()
    assert iou > 0.9


TF_CHECKS = r"""
import json, sys
import numpy as np
from covid19_images import load_covid_xray
from covid19_images.export import export
root, out = sys.argv[1], sys.argv[2]
export(out, "tfrecord", root=root, image_size=32, shard_size=10)
import tensorflow as tf
found = {}
ds = load_covid_xray("tf", shards=out, split="train", with_id=True, augment="light", seed=4)
policy = ds.options().experimental_distribute.auto_shard_policy
found["file_policy"] = policy == tf.data.experimental.AutoShardPolicy.FILE
a = list(ds.as_numpy_iterator())
b = list(ds.as_numpy_iterator())
found["ids"] = [x[2].decode() for x in a]
found["same_seed_same"] = all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
plain = list(load_covid_xray("tf", shards=out, split="train").as_numpy_iterator())
found["augmented_share"] = float(np.mean([not np.allclose(x[0], y[0]) for x, y in zip(a, plain)]))
val = list(load_covid_xray("tf", shards=out, split="val", augment="light").as_numpy_iterator())
val_plain = list(load_covid_xray("tf", shards=out, split="val").as_numpy_iterator())
found["val_untouched"] = all(np.array_equal(x[0], y[0]) for x, y in zip(val, val_plain)) and len(val) > 0
strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
dist = strategy.experimental_distribute_dataset(load_covid_xray("tf", shards=out, split="train").batch(8))
found["distributed_items"] = sum(int(strategy.experimental_local_results(y)[0].shape[0]) for _, y in dist)
mapped = load_covid_xray("tf", root=root, split="test", image_size=32, with_id=True)
found["map_ids"] = [x[2].decode() for x in mapped.as_numpy_iterator()]
found["map_manifest_ids"] = mapped.manifest["image_id"].tolist()
cached = load_covid_xray(
    "tf", root=root, split="test", image_size=32, with_id=True, cache=True, cache_dir=out + "-cache"
)
found["cached_ids"] = [x[2].decode() for x in cached.as_numpy_iterator()]
kw = dict(root=root, split="train", image_size=32, augment="light", seed=9)
one = [x[0] for x in load_covid_xray("tf", **kw).as_numpy_iterator()]
two = [x[0] for x in load_covid_xray("tf", **kw).as_numpy_iterator()]
base = [x[0] for x in load_covid_xray("tf", root=root, split="train", image_size=32).as_numpy_iterator()]
found["map_same_seed_same"] = all(np.array_equal(x, y) for x, y in zip(one, two))
found["map_augmented_share"] = float(np.mean([not np.allclose(x, y) for x, y in zip(one, base)]))
from covid19_images.loaders.tf.augment import tf_light
mask = np.zeros((64, 64, 1), np.uint8)
mask[12:40, 20:50] = 1
moved, moved_mask = tf_light(tf, tf.constant(np.repeat(mask, 3, 2), tf.float32), tf.constant([1, 2]), tf.constant(mask))
bright, region = moved.numpy()[..., 0] > 0.5, moved_mask.numpy()[..., 0] > 0
found["mask_moved"] = bool((region != (mask[..., 0] > 0)).any())
found["mask_iou"] = float((bright & region).sum() / (bright | region).sum())
print("RESULT " + json.dumps(found))
"""


def test_tensorflow_streams_the_tfrecord_export(root: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    script = TF_CHECKS.replace("sys.argv[1], sys.argv[2]", f"{str(root)!r}, {str(tmp_path / 'tfr')!r}")
    result = run_python(script, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))[7:])
    train = exported(tmp_path / "tfr").query("split == 'train'")["image_id"].tolist()
    assert found["file_policy"]
    assert sorted(found["ids"]) == sorted(train) and len(found["ids"]) == len(train)
    assert found["same_seed_same"] and found["augmented_share"] > 0.9 and found["val_untouched"]
    assert found["distributed_items"] == len(train)
    assert found["map_ids"] == found["map_manifest_ids"] == found["cached_ids"] and found["map_ids"]
    assert found["map_same_seed_same"] and found["map_augmented_share"] > 0.9
    assert found["mask_moved"] and found["mask_iou"] > 0.9  # a mask gets the image's geometric transform


def test_row_filters_are_refused_with_shards(shards: Path) -> None:
    with pytest.raises(ValueError, match="export"):
        load_covid_xray("torch", shards=shards, sources=["darshan-xray"])
    with pytest.raises(ValueError, match="unknown split"):
        load_covid_xray("torch", shards=shards, split="nope")


LAUNCHED = r"""
import json, os, sys
import torch
import torch.distributed as dist
from covid19_images import load_covid_xray


def run(rank, world, shards, out, context):
    dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world)
    ds = load_covid_xray("torch", shards=shards, split="train", with_id=True, seed=5)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context=context)
    ids = [i for batch in loader for i in batch[2]]
    even = load_covid_xray("torch", shards=shards, split="train", with_id=True, seed=5, equalize="pad")
    steps = len(list(torch.utils.data.DataLoader(even, batch_size=4, num_workers=2, multiprocessing_context=context)))
    with open(os.path.join(out, f"{rank}.json"), "w") as handle:
        json.dump({"ids": ids, "steps": steps}, handle)
    dist.destroy_process_group()


def spawned(rank, shards, out, context):
    run(rank, 2, shards, out, context)


if __name__ == "__main__":
    launcher, shards, out, context = sys.argv[1:5]
    if launcher == "spawn":  # PyTorch's DDP tutorial: torch.multiprocessing.spawn
        torch.multiprocessing.spawn(spawned, args=(shards, out, context), nprocs=2, join=True)
    else:  # torchrun: RANK and WORLD_SIZE from the environment
        run(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), shards, out, context)
"""


@pytest.mark.parametrize(
    ("launcher", "context"), [("spawn", "spawn"), ("spawn", "forkserver"), ("torchrun", "forkserver")]
)
def test_every_launcher_and_worker_start_method_splits_the_epoch_across_ranks(
    shards: Path, tmp_path: Path, launcher: str, context: str
) -> None:
    """Workers that do not inherit the process group (spawn, forkserver) still know their rank."""
    script = tmp_path / "launched.py"
    script.write_text(LAUNCHED)
    env = {**__import__("os").environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    if launcher == "spawn":
        command = [sys.executable, "-W", "ignore", str(script), launcher, str(shards), str(tmp_path), context]
    else:
        command = [
            *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1"),
            f"--master_port={env['MASTER_PORT']}",
            *(str(script), launcher, str(shards), str(tmp_path), context),
        ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in (0, 1)]
    train = exported(shards).query("split == 'train'")["image_id"]
    assert sorted(ranks[0]["ids"] + ranks[1]["ids"]) == sorted(train)  # every sample once, across ranks
    assert not set(ranks[0]["ids"]) & set(ranks[1]["ids"]) and ranks[0]["ids"] and ranks[1]["ids"]
    assert ranks[0]["steps"] == ranks[1]["steps"]  # equalize: the same number of steps on every rank


def test_non_train_streams_are_not_shuffled_unless_asked(shards: Path) -> None:
    """val and test stream in export order whatever the seed or epoch; train shuffles; a buffer can be asked."""
    rows = exported(shards)
    in_order = rows.loc[rows["split"] == "val", "image_id"].tolist()
    for seed, epoch in ((0, 0), (9, 3)):
        val = load_covid_xray("torch", shards=str(shards), split="val", with_id=True, seed=seed, image_size=8)
        val.set_epoch(epoch)
        assert [item[2] for item in val] == in_order
    train = load_covid_xray("torch", shards=str(shards), split="train", with_id=True, seed=1, image_size=8)
    assert [item[2] for item in train] != rows.loc[rows["split"] == "train", "image_id"].tolist()
    asked = load_covid_xray("torch", shards=str(shards), split="val", with_id=True, shuffle_buffer=50, image_size=8)
    served = [item[2] for item in asked]
    assert sorted(served) == sorted(in_order) and served != in_order
