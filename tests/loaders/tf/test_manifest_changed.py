"""TensorFlow's loaders notice that the manifest they were built from is no longer the one on disk.

The native routes decode inside TensorFlow (``tf.io.read_file`` + ``decode_jpeg``/``decode_png``),
without the shared reader, so the check has to be part of the graph. TensorFlow runs in a child
process (see ``test_adapter.py``) that builds the dataset, serves one epoch, then waits on stdin
while this process swaps two files and syncs; then it serves again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from covid19_images.loaders import load_manifest
from covid19_images.loaders._options import make_options
from covid19_images.loaders._select import select
from covid19_images.loaders.tf.adapter import ROUTE_READER, route_for
from tests.conftest import build_synced_root, swap_contents_and_resync
from tests.loaders.test_loaders_common import PYTHON

pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("loaders-tf")]

CHILD = r"""
import json, sys
from covid19_images import load_covid_xray

root, task = sys.argv[1], sys.argv[2]
kwargs = {"target": "multilabel"} if task == "multilabel" else {}
ds = load_covid_xray("tf", root=root, split="train", image_size=16, **kwargs)
first = sum(1 for _ in ds.as_numpy_iterator())
print(json.dumps({"first": first}), flush=True)
sys.stdin.readline()  # the parent swaps two files and syncs
try:
    second = sum(1 for _ in ds.as_numpy_iterator())
    print(json.dumps({"second": second}), flush=True)
except Exception as error:  # noqa: BLE001 - the child reports what TF raised
    print(json.dumps({"error": type(error).__name__, "message": str(error)}), flush=True)
"""

MID_EPOCH = r"""
import json, sys
from covid19_images import load_covid_xray

root, batch = sys.argv[1], int(sys.argv[2]) or None
# prefetch=False: the stamp check runs when an element is asked for, so what follows is exact
ds = load_covid_xray("tf", root=root, split="train", image_size=16, batch_size=batch, prefetch=False)
served = iter(ds.as_numpy_iterator())
next(served)
print(json.dumps({"first": 1}), flush=True)
sys.stdin.readline()  # the parent swaps two files and syncs
count = 0
try:
    for _ in served:
        count += 1
    print(json.dumps({"served": count}), flush=True)
except Exception as error:  # noqa: BLE001 - the child reports what TF raised
    print(json.dumps({"served": count, "error": type(error).__name__, "message": str(error)}), flush=True)
"""


def _swap_two_files_of_different_labels(root: Path) -> None:  # and sync
    rows = load_manifest(root)
    rows = rows[rows["split"] == "train"]
    other = rows[rows["label"] != rows["label"].iloc[0]].iloc[0]
    swap_contents_and_resync(root, root / rows["path"].iloc[0], root / other["path"])


def _serve_across_a_sync(root: Path, task: str, child_code: str = CHILD) -> tuple[dict, dict]:
    child = subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(child_code), str(root), task],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else ""
        before = json.loads(line)
        _swap_two_files_of_different_labels(root)
        child.stdin.write("go\n")
        child.stdin.flush()
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else ""
        after = json.loads(line)
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return before, after


@pytest.fixture(scope="module")
def darshan(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    return build_synced_root(tmp_path_factory.mktemp("tf-manifest-changed"), mirrors, ["darshan-xray"])


def test_native_decode_route_stops_after_a_sync_that_swapped_two_files(darshan: Path) -> None:
    items = select(load_manifest(darshan), make_options("xray", root=darshan, split="train", image_size=16)).items
    routes = [
        route_for(f, m, int(w), int(h), (16, 16))
        for f, m, w, h in zip(items["file"], items["format"], items["width"], items["height"], strict=True)
    ]
    assert ROUTE_READER not in routes  # every item is decoded by TF itself: the reader's check never runs
    before, after = _serve_across_a_sync(darshan, "classification")
    assert before == {"first": len(items)}
    assert "error" in after, after
    assert "changed since this loader was built" in after["message"]


@pytest.mark.parametrize("batch_size", [0, 2], ids=["items", "batches"])
def test_a_sync_in_the_middle_of_an_epoch_stops_the_next_element(darshan: Path, batch_size: int) -> None:
    """The check runs after an element's files were read, when it is served: nothing decoded before
    the sync (the parallel map reads ahead) is served after it, batched or not."""
    items = select(load_manifest(darshan), make_options("xray", root=darshan, split="train", image_size=16)).items
    assert len(items) >= 3 * max(batch_size, 1), "enough elements left after the first"
    before, after = _serve_across_a_sync(darshan, str(batch_size), MID_EPOCH)
    assert before == {"first": 1}
    assert after.get("served") == 0 and "error" in after, after
    assert "changed since this loader was built" in after["message"]


READ_RACE = r"""
import json, sys
from pathlib import Path
from covid19_images import load_covid_xray
from covid19_images.loaders.tf import tasks
from covid19_images.sync.run import sync

root = Path(sys.argv[1])
ds = load_covid_xray("tf", root=root, split="train", image_size=16, target="multilabel", prefetch=False)
rows = ds.manifest
a = root / rows["path"].iloc[0]
b = root / rows[rows["label"] != rows["label"].iloc[0]]["path"].iloc[0]
read, landed = tasks.load_item, []

def read_while_a_sync_lands(*args):
    if not landed and Path(args[0]) == a:  # the first element's read: a sync swaps two files meanwhile
        landed.append(True)
        data_a, data_b = a.read_bytes(), b.read_bytes()
        a.write_bytes(data_b)
        b.write_bytes(data_a)
        assert not sync(root, offline=True, progress=False).failed
    return read(*args)

tasks.load_item = read_while_a_sync_lands
served = 0
try:
    for _ in ds.as_numpy_iterator():
        served += 1
    print(json.dumps({"served": served}), flush=True)
except Exception as error:  # noqa: BLE001 - the child reports what TF raised
    print(json.dumps({"served": served, "error": type(error).__name__, "message": str(error)}), flush=True)
"""


def test_a_task_element_read_while_a_sync_lands_is_not_served(tmp_path: Path, mirrors: Path) -> None:
    """The task route (``loaders.tf.tasks``) checks the stamp after an element's reads, in the same call:
    the first element, whose read a sync landed in the middle of, is refused, not served."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    root = build_synced_root(tmp_path, mirrors, ["darshan-xray"])
    done = subprocess.run(
        [PYTHON, "-c", textwrap.dedent(READ_RACE), str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["served"] == 0 and "error" in outcome, outcome
    assert "changed since this loader was built" in outcome["message"]
