"""The TFRecord stream under a real two-worker ``tf.distribute.MultiWorkerMirroredStrategy``.

Two worker processes on localhost (``TF_CONFIG`` with two free ports; gRPC, no network needed)
each read the export through ``load_covid_xray("tf", shards=..., split="train")`` and
``strategy.experimental_distribute_dataset``. The export has uneven files (an odd number of
train files, the last one short), so the FILE auto-shard gives the workers
different amounts of data. TensorFlow runs in subprocesses only (see tests/loaders/tf/test_adapter.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import build_synced_root
from tests.loaders.test_loaders_common import XRAY_SOURCES, run_python

pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("streaming-tf")]

GLOBAL_BATCH = 4

WORKER = r"""
import json, os, sys
rank, ports, shards, out = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3], sys.argv[4]
os.environ["TF_CONFIG"] = json.dumps(
    {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": rank}}
)
from covid19_images import load_covid_xray
import tensorflow as tf

strategy = tf.distribute.MultiWorkerMirroredStrategy()
result = {"replicas": strategy.num_replicas_in_sync, "runs": []}


@tf.function
def step(labels):
    # a collective per step: it completes only if both workers run the same number of steps
    local = strategy.run(lambda y: tf.shape(y)[0], args=(labels,))
    return strategy.reduce(tf.distribute.ReduceOp.SUM, local, axis=None)


# the third run seeds each worker differently: the FILE shard is taken before the file shuffle
for shuffle, epochs, seed in ((False, 1, 3), (True, 2, 3), (True, 1, 3 + rank)):
    ds = load_covid_xray("tf", shards=shards, split="train", with_id=True, shuffle=shuffle, seed=seed)
    files = list(ds.files)
    dist = strategy.experimental_distribute_dataset(ds.batch({batch}))
    for epoch in range(epochs):
        ids, steps, reduced = [], 0, 0
        for images, labels, image_ids in dist:
            for local in strategy.experimental_local_results(image_ids):
                ids += [x.decode() for x in local.numpy()]
            reduced += int(step(labels))
            steps += 1
        run = {"shuffle": shuffle, "seed": seed, "epoch": epoch, "ids": ids, "steps": steps, "reduced": reduced}
        result["runs"].append(run)
result["files"] = files
# fewer files than workers: one file for two workers
one = load_covid_xray("tf", shards=files[0], split="train", with_id=True)
try:
    result["one_file"] = sum(1 for _ in strategy.experimental_distribute_dataset(one.batch({batch})))
except Exception as err:  # noqa: BLE001 (report what TF says)
    result["one_file"] = f"{type(err).__name__}: {err}"[:500]
with open(out, "w") as handle:
    json.dump(result, handle)
""".replace("{batch}", str(GLOBAL_BATCH))

EXPORT = r"""
import sys
from covid19_images.export import export
export(sys.argv[1], "tfrecord", root=sys.argv[2], image_size=32, shard_size=int(sys.argv[3]))
"""


def uneven_shard_size(root: Path) -> int:
    """A shard size giving an odd number (>= 3) of train files, the last one short: uneven workers."""
    from covid19_images.loaders import load_manifest
    from covid19_images.loaders._options import make_options
    from covid19_images.loaders._select import select

    train = int((select(load_manifest(root), make_options("xray", root=root)).items["split"] == "train").sum())
    for size in range(3, train):
        files = -(-train // size)
        if files >= 3 and files % 2 == 1 and train % size:
            return size
    pytest.skip(f"{train} training images cannot make an uneven file split")


def free_ports(count: int) -> list[int]:
    """Ports the OS just handed out on localhost (closed again, for the workers to bind)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> tuple[Path, list[dict]]:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    try:
        ports = free_ports(2)
    except OSError as err:
        pytest.skip(f"this platform cannot open localhost ports for the two TF workers: {err}")
    base = tmp_path_factory.mktemp("tf-multiworker")
    root = build_synced_root(base, mirrors, XRAY_SOURCES)
    out = base / "tfr"
    script = EXPORT.replace("sys.argv[1]", repr(str(out))).replace("sys.argv[2]", repr(str(root)))
    made = run_python(script.replace("sys.argv[3]", repr(str(uneven_shard_size(root)))))
    assert made.returncode == 0, made.stderr[-3000:]
    # gRPC honours proxy variables: keep localhost direct
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "no_grpc_proxy": "localhost,127.0.0.1"}
    script = textwrap.dedent(WORKER)
    args = [",".join(map(str, ports)), str(out)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", script, str(rank), *args, str(base / f"{rank}.json")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [p.communicate(timeout=420) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    return out, [json.loads((base / f"{rank}.json").read_text()) for rank in (0, 1)]


def test_two_workers_see_every_training_image_exactly_once_and_disjointly(workers) -> None:
    out, (first, second) = workers
    train = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False).query("split == 'train'")
    expected = sorted(train["image_id"])
    assert first["replicas"] == second["replicas"] == 2
    assert len(first["files"]) >= 3 and len(first["files"]) % 2 == 1  # uneven: one worker reads a file more
    assert len(first["runs"]) == len(second["runs"]) == 4
    assert first["runs"][-1]["seed"] != second["runs"][-1]["seed"]
    for a, b in zip(first["runs"], second["runs"], strict=True):
        assert a["ids"] and b["ids"], "each worker reads its own files"
        assert not set(a["ids"]) & set(b["ids"])
        assert sorted(a["ids"] + b["ids"]) == expected
        assert len(set(a["ids"])) == len(a["ids"]) and len(set(b["ids"])) == len(b["ids"])


def test_uneven_files_still_give_both_workers_the_same_steps(workers) -> None:
    out, (first, second) = workers
    train = len(pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False).query("split == 'train'"))
    for a, b in zip(first["runs"], second["runs"], strict=True):
        assert len(a["ids"]) != len(b["ids"])  # the FILE split is uneven ...
        assert a["steps"] == b["steps"]  # ... yet TF keeps the workers in step (empty batches at the end)
        assert a["reduced"] == b["reduced"] == train  # the per-step all-reduce counted every image once


def test_the_seeded_file_shuffle_changes_with_the_epoch_on_both_workers(workers) -> None:
    _, (first, second) = workers
    for worker in (first, second):
        shuffled = [run for run in worker["runs"] if run["shuffle"] and run["seed"] == 3]
        assert shuffled[0]["ids"] != shuffled[1]["ids"]
    plain = next(run for run in first["runs"] if not run["shuffle"])
    assert sorted(plain["ids"]) != plain["ids"] or shuffled[0]["ids"] != plain["ids"]


def test_fewer_files_than_workers_is_refused_by_tf(workers) -> None:
    # TF's own error (at the first step, on the worker left without a file); the other worker's
    # collective is then aborted, not hung
    _, (first, second) = workers
    said = [str(worker["one_file"]) for worker in (first, second)]
    assert any("Could not apply FILE based sharding" in text and "1 file(s)" in text for text in said), said
