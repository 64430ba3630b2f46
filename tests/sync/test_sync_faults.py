"""``sync`` under faults, the way cron mirrors meet them: real git repos, real processes, real signals.

* a source whose upstream is unreachable, force-pushed or lost its branch, or whose checkout
  was edited or moved off its pin, is refused with a specific message and left exactly as
  it was (gitlink, checkout, manifest rows) while the other sources still sync;
* two syncs on one root: the second refuses with the first one's pid, or waits (``--wait``);
  a sync killed while holding the lock does not block the next one;
* a sync killed (SIGKILL) at every checkpoint of a real run, and while git holds
  ``index.lock``: the manifest is always a complete one (the previous one, byte for byte,
  until the new one replaces it) and the next sync completes and produces the same result
  as an uninterrupted run.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from covid19_images.core.failpoints import KILL_ENV, STOP_ENV, TRACE_ENV
from covid19_images.core.schema import MANIFEST_COLUMNS
from covid19_images.manifest.build import MANIFEST_FILE, PROBLEMS_FILE, read_manifest
from covid19_images.sync.run import SyncBusy, sync
from tests.badinputs import Upstream, make_root, run_git, small_tree

pytestmark = [
    pytest.mark.upstream,
    pytest.mark.skipif(sys.platform != "linux", reason="uses SIGSTOP/SIGKILL, /proc and the forkserver start method"),
]

A1 = ["000005-5-b.jpg", "000002-11-b.jpg", "000002-14.jpg"]
A2 = ["000005-5-b.jpg", "000002-14.jpg", "yxppt-2020-02-19_00-51-27_287214-day8.jpg", "000002-19-b.jpg"]
B1 = ["yxppt-2020-02-19_00-51-27_287214-day10.jpg", "1-s2.0-S1684118220300608-main.pdf-001.jpg"]
B2 = [*B1, "yxppt-2020-02-19_00-51-27_287214-day12.jpg"]


@dataclass
class World:
    root: Path
    mirror: Path
    alpha: Upstream
    beta: Upstream
    tmp: Path

    def tree(self, name: str, images: list[str], **kwargs) -> Path:
        return small_tree(self.tmp / "trees" / name, images, **kwargs)


@pytest.fixture
def world(tmp_path: Path) -> World:
    """Two upstreams of real ieee8023 images; a root synced to both and committed."""
    mirror = tmp_path / "mirror"
    w = World(
        tmp_path / "root", mirror, Upstream(mirror, "example", "alpha"), Upstream(mirror, "example", "beta"), tmp_path
    )
    w.alpha.publish(w.tree("a1", A1))
    w.beta.publish(w.tree("b1", B1))
    make_root(w.root, [{"name": "alpha", "url": w.alpha.url}, {"name": "beta", "url": w.beta.url}])
    report = sync(w.root, mirror=mirror, progress=False, commit=True)
    assert not report.failed, report.summary()
    return w


@dataclass(frozen=True)
class SourceState:
    gitlink: str
    head: str
    status: str
    rows: pd.DataFrame


def state(root: Path, name: str) -> SourceState:
    manifest = read_manifest(root)
    return SourceState(
        run_git("ls-files", "-s", f"datasets/{name}", cwd=root),
        run_git("rev-parse", "HEAD", cwd=root / "datasets" / name),
        run_git("status", "--porcelain", cwd=root / "datasets" / name),
        manifest[manifest["source"] == name].reset_index(drop=True),
    )


def assert_untouched(before: SourceState, after: SourceState) -> None:
    assert after.gitlink == before.gitlink
    assert after.head == before.head
    assert after.status == before.status
    pd.testing.assert_frame_equal(after.rows, before.rows)


def sync_with_beta_moving(w: World) -> tuple[dict[str, object], SourceState]:
    """Publish a new beta commit, sync, and return the updates by source plus alpha's state."""
    beta_tip = w.beta.publish(w.tree("b2", B2))
    report = sync(w.root, mirror=w.mirror, progress=False)
    updates = {u.name: u for u in report.updates}
    assert updates["beta"].status == "updated" and updates["beta"].new == beta_tip
    manifest = read_manifest(w.root)
    assert len(manifest[manifest["source"] == "beta"]) == len(B2)
    return updates, state(w.root, "alpha")


def test_unreachable_upstream(world: World) -> None:
    before = state(world.root, "alpha")
    world.alpha.make_unreachable()
    updates, after = sync_with_beta_moving(world)
    message = updates["alpha"].message
    assert updates["alpha"].status == "refused"
    assert message.startswith("upstream unreachable: cannot fetch https://github.com/example/alpha.git: fatal:")
    assert "does not appear to be a git repository" in message
    assert message.endswith("nothing was changed for this source")
    assert_untouched(before, after)


def test_force_pushed_upstream(world: World) -> None:
    before = state(world.root, "alpha")
    world.alpha.rewrite(world.tree("a-rewritten", A2))
    updates, after = sync_with_beta_moving(world)
    assert updates["alpha"].status == "refused"
    assert updates["alpha"].message == (
        f"upstream master no longer contains the pinned commit {before.gitlink.split()[1][:12]} "
        "(force-push or history rewrite); review it, then rerun with --allow-rewrite; "
        "nothing was changed for this source"
    )
    assert_untouched(before, after)


def test_deleted_upstream_branch(world: World) -> None:
    before = state(world.root, "alpha")
    world.alpha.delete_branch()
    updates, after = sync_with_beta_moving(world)
    assert updates["alpha"].status == "refused"
    assert updates["alpha"].message == (
        "upstream https://github.com/example/alpha.git has no branch 'master' (deleted or renamed upstream?); "
        "nothing was changed for this source; if it moved, set `branch:` in sources.yaml"
    )
    assert_untouched(before, after)


def test_locally_modified_submodule(world: World) -> None:
    world.alpha.publish(world.tree("a2", A2))  # there is something to update to
    checkout = world.root / "datasets" / "alpha"
    edited = checkout / "images" / A1[0]
    edited.chmod(0o644)
    edited.write_bytes((checkout / "images" / A1[1]).read_bytes())  # a different picture, same name
    (checkout / "images" / "scratch.png").write_bytes(b"local experiment")
    before = state(world.root, "alpha")
    updates, after = sync_with_beta_moving(world)
    assert updates["alpha"].status == "refused"
    assert updates["alpha"].message == (
        "datasets/alpha has local modifications; commit or discard them first (git -C datasets/alpha status); "
        "nothing was changed for this source"
    )
    # the manifest still describes the pinned files, not the edited one
    assert_untouched(before, after)
    assert edited.read_bytes() == (checkout / "images" / A1[1]).read_bytes()


def test_submodule_checked_out_off_its_pin(world: World) -> None:
    first = state(world.root, "alpha").head
    world.alpha.publish(world.tree("a2", A2))
    sync(world.root, mirror=world.mirror, progress=False, commit=True)
    pinned = state(world.root, "alpha").gitlink.split()[1]
    checkout = world.root / "datasets" / "alpha"
    run_git("checkout", "-q", "--detach", first, cwd=checkout)  # someone looked at an old commit
    before = state(world.root, "alpha")
    updates, after = sync_with_beta_moving(world)
    assert updates["alpha"].status == "refused"
    assert updates["alpha"].message == (
        f"datasets/alpha is checked out at {first[:12]}, not at the pinned {pinned[:12]}; run `git submodule update "
        "datasets/alpha` to return to the pin, or `git add datasets/alpha` to pin it; "
        "nothing was changed for this source"
    )
    assert_untouched(before, after)
    assert len(after.rows) == len(A2)  # still the rows of the pinned commit, not of the checked-out one


# ---------------------------------------------------------------- concurrent and killed syncs


def _cli(root: Path, mirror: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "covid19_images.cli",
        "sync",
        "--root",
        str(root),
        "--mirror",
        str(mirror),
        "--quiet",
        *extra,
    ]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (KILL_ENV, STOP_ENV, TRACE_ENV)}
    env.update(extra)
    return env


def _wait_stopped(process: subprocess.Popen, timeout: float = 60) -> None:
    """Block until ``process`` has stopped itself (SIGSTOP at its checkpoint)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{process.pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("sync never reached its checkpoint")


def test_second_sync_refuses_or_waits_and_a_killed_one_does_not_block(world: World) -> None:
    world.alpha.publish(world.tree("a2", A2))
    trace = world.tmp / "trace-two-syncs.txt"
    first = subprocess.Popen(
        _cli(world.root, world.mirror),
        env=_env(**{STOP_ENV: "sync.locked", TRACE_ENV: str(trace)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_stopped(first)
        with pytest.raises(SyncBusy) as busy:
            sync(world.root, mirror=world.mirror, progress=False)
        assert str(busy.value) == (f"sync already running (pid {first.pid}) on {world.root}; wait for it or use --wait")
        refused = subprocess.run(_cli(world.root, world.mirror), env=_env(), capture_output=True, text=True)
        assert refused.returncode == 1
        assert f"Error: sync already running (pid {first.pid})" in refused.stderr
        waiting = subprocess.Popen(
            _cli(world.root, world.mirror, "--wait"), env=_env(**{TRACE_ENV: str(trace)}), stdout=subprocess.DEVNULL
        )
        time.sleep(1.5)  # give it time to ask for the lock; the trace below proves the order either way
        assert waiting.poll() is None, "--wait must block while the first sync holds the lock"
        os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=120) == 0
        assert waiting.wait(timeout=120) == 0
        # both syncs traced their checkpoints into one file: the waiting one took the lock only
        # after the first one let it go
        points = trace.read_text().split()
        assert points.count("sync.locked:1") == 2
        assert points.index("sync.unlocking:1") < len(points) - 1 - points[::-1].index("sync.locked:1")
        assert points[0] == "sync.locked:1" and points[-1] == "sync.unlocking:1"
    finally:
        if first.poll() is None:
            first.kill()
    manifest = read_manifest(world.root)
    assert len(manifest[manifest["source"] == "alpha"]) == len(A2)

    # a sync killed while holding the lock: the OS releases it, the next sync runs at once
    world.beta.publish(world.tree("b2", B2))
    dead = subprocess.Popen(_cli(world.root, world.mirror), env=_env(**{STOP_ENV: "sync.locked"}))
    _wait_stopped(dead)
    dead.kill()
    dead.wait()
    report = sync(world.root, mirror=world.mirror, progress=False)  # without wait: SyncBusy if still locked
    assert not report.failed
    assert f"note: the previous sync (pid {dead.pid}) did not finish (killed?)" in report.summary()


# Killed syncs run in processes forked from a server that has already imported everything, so
# each of the many kill points costs a sync, not a Python start-up with pandas and pydicom.
_FORK = multiprocessing.get_context("forkserver")
_FORK.set_forkserver_preload(["covid19_images.sync.run", "pydicom", "tests.sync.test_sync_faults"])


def _sync_child(root: str, mirror: str, env: dict[str, str]) -> None:
    os.environ.update(env)
    sync(Path(root), mirror=Path(mirror), progress=False, commit=True)


def _sync_process(root: Path, mirror: Path, **env: str) -> int | None:
    """Run ``sync --commit`` in its own process (with fault variables); its exit code (-9: SIGKILL)."""
    return _sync_processes(mirror, [(root, env)], at_once=1)[0]


def _sync_processes(mirror: Path, jobs: list[tuple[Path, dict[str, str]]], at_once: int = 3) -> list[int | None]:
    """Run ``sync --commit`` on each ``(root, fault variables)``, ``at_once`` at a time; their exit codes.

    Every process is started, waited for and reaped from this one thread. ``Process.start``
    polls every other live child (``multiprocessing.process._cleanup``); when another thread is
    joining one of them at that moment, both read its exit status from the fork server and the
    loser gets EOF and records 255 instead of -9. Started and joined from worker threads, about
    one process in 300 came back 255 here: this test's former flakiness (issue 15).
    """
    codes: list[int | None] = [None] * len(jobs)
    waiting = list(enumerate(jobs))
    running: dict[int, multiprocessing.process.BaseProcess] = {}
    deadline: dict[int, float] = {}
    while waiting or running:
        while waiting and len(running) < at_once:
            index, (root, env) = waiting.pop(0)
            process = _FORK.Process(target=_sync_child, args=(str(root), str(mirror), env))
            process.start()
            running[index], deadline[index] = process, time.monotonic() + 300
        multiprocessing.connection.wait([p.sentinel for p in running.values()], timeout=1)
        for index, process in list(running.items()):
            if process.is_alive() and time.monotonic() < deadline[index]:
                continue
            if process.is_alive():
                process.kill()
            process.join()
            codes[index] = process.exitcode
            del running[index]
    return codes


def _manifest_points(points: list[str]) -> int:
    """Index of the checkpoint right after manifest.csv is renamed into place."""
    done = points.index("write.manifest-done:1")
    return max(i for i, p in enumerate(points[:done]) if p.startswith("write.replaced:"))


@dataclass
class Pending:
    """A root one sync behind its upstreams, the manifest before (None: none yet) and after
    an uninterrupted sync, and every checkpoint that sync passed."""

    template: Path
    old: bytes | None
    new: bytes
    points: list[str]
    alpha_tip: str


def _pending(world: World, kind: str) -> Pending:
    alpha_tip = world.alpha.publish(world.tree("a2", A2, finding="Pneumocystis"))
    world.beta.publish(world.tree("b2", B2))
    if kind == "update":
        template = world.root
    elif kind == "first-sync":  # sources.yaml only: every source is `git submodule add`ed
        template = make_root(
            world.tmp / "first", [{"name": n, "url": u.url} for n, u in (("alpha", world.alpha), ("beta", world.beta))]
        )
    else:  # "fresh-clone": the root cloned without its submodules, which sync must clone
        template = world.tmp / "fresh"
        run_git("clone", "-q", str(world.root), str(template), cwd=world.tmp)
        run_git("config", "user.name", "Test", cwd=template)
        run_git("config", "user.email", "test@example.invalid", cwd=template)
    old = (template / MANIFEST_FILE).read_bytes() if (template / MANIFEST_FILE).exists() else None
    reference = world.tmp / f"reference-{kind}"
    shutil.copytree(template, reference, symlinks=True)
    trace = world.tmp / f"trace-{kind}.txt"
    assert _sync_process(reference, world.mirror, **{TRACE_ENV: str(trace)}) == 0
    new = (reference / MANIFEST_FILE).read_bytes()
    assert new != old
    return Pending(template, old, new, trace.read_text().split(), alpha_tip)


@pytest.fixture
def pending_update(world: World) -> Pending:
    return _pending(world, "update")


@pytest.mark.parametrize("kind", ["update", "first-sync", "fresh-clone"])
def test_sigkill_at_every_checkpoint_keeps_a_complete_manifest(world: World, kind: str) -> None:
    pending = _pending(world, kind)
    points = pending.points
    assert len(points) == len(set(points)) >= 20, points
    expected = {
        "update": ("update.checked-out:1", "update.fetched:2"),
        "first-sync": ("update.added:1", "update.added:2"),
        "fresh-clone": ("update.cloned:1", "update.checked-out:2"),
    }[kind]
    assert set(expected) <= set(points), points
    for always in ("build.probed:1", "write.tmp-written:2", "write.replaced:2", "commit.staged:1"):
        assert always in points
    replaced_at = _manifest_points(points)
    if kind != "update":  # the write and commit steps are the same as in "update": kill around the git steps
        points = [p for p in points if p.split(".")[0] in ("update", "sync")]

    roots = {point: world.tmp / f"kill-{i:02d}" for i, point in enumerate(points)}
    for root in roots.values():
        shutil.copytree(pending.template, root, symlinks=True)

    jobs = [(roots[point], {KILL_ENV: point}) for point in points]
    codes = dict(zip(points, _sync_processes(world.mirror, jobs), strict=True))

    for point in points:
        root = roots[point]
        assert codes[point] == -signal.SIGKILL, f"{point}: the sync was not killed there"
        # the manifest on disk is always complete: the old one until the rename, then the new one
        on_disk = (root / MANIFEST_FILE).read_bytes() if (root / MANIFEST_FILE).exists() else None
        assert on_disk == (pending.new if pending.points.index(point) >= replaced_at else pending.old), point
        if on_disk is not None:
            assert list(read_manifest(root).columns) == list(MANIFEST_COLUMNS)
            pd.read_csv(root / PROBLEMS_FILE, dtype=str, keep_default_na=False)

        report = sync(root, mirror=world.mirror, progress=False, commit=True)
        assert not report.failed, f"{point}: {report.summary()}"
        assert (root / MANIFEST_FILE).read_bytes() == pending.new, f"killed at {point}: the next sync differs"
        assert run_git("show", f"HEAD:{MANIFEST_FILE}", cwd=root) + "\n" == pending.new.decode()
        assert run_git("ls-tree", "HEAD", "datasets/alpha", cwd=root).split()[2] == pending.alpha_tip
        assert run_git("status", "--porcelain", "--ignore-submodules=none", cwd=root) == ""
        assert not list((root / "manifests").glob(".*.tmp")), point
        assert not (root / ".git" / "covid19-images-sync.pid").exists()
        assert "did not finish (killed?)" in report.summary(), point
        shutil.rmtree(root)


def test_sigkill_while_git_holds_index_lock(world: World, pending_update) -> None:
    """A real stale ``.git/index.lock``: the sync and its git child die while git commits."""
    template, new, alpha_tip = pending_update.template, pending_update.new, pending_update.alpha_tip
    marker = world.tmp / "in-hook"
    hook = template / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\nif [ ! -e {marker} ]; then touch {marker}; sleep 120; fi\nexit 0\n")
    hook.chmod(0o755)
    process = subprocess.Popen(
        _cli(template, world.mirror, "--commit"), env=_env(), start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert (template / ".git" / "index.lock").exists()
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert (template / ".git" / "index.lock").exists(), "the killed git left its lock behind"
    assert (template / MANIFEST_FILE).read_bytes() == new  # written before the commit started

    report = sync(template, mirror=world.mirror, progress=False, commit=True)
    assert not report.failed, report.summary()
    assert "removed its git lock files .git/index.lock" in report.summary()
    assert report.committed
    assert run_git("ls-tree", "HEAD", "datasets/alpha", cwd=template).split()[2] == alpha_tip
    assert run_git("show", f"HEAD:{MANIFEST_FILE}", cwd=template) + "\n" == new.decode()
    assert not (template / ".git" / "index.lock").exists()


def test_interrupted_sync_leaves_previous_manifest_and_cleans_temporaries(world: World) -> None:
    """Killed between writing manifest.csv's temporary file and renaming it (the third atomic
    write: problems.csv, annotations.csv, then manifest.csv)."""
    world.alpha.publish(world.tree("a2", A2))
    before = (world.root / MANIFEST_FILE).read_bytes()
    killed = subprocess.run(
        _cli(world.root, world.mirror), env=_env(**{KILL_ENV: "write.fsynced:3"}), capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL
    assert (world.root / MANIFEST_FILE).read_bytes() == before
    leftovers = list((world.root / "manifests").glob(".manifest.csv.*.tmp"))
    assert len(leftovers) == 1
    report = sync(world.root, mirror=world.mirror, progress=False)
    assert not list((world.root / "manifests").glob(".*.tmp"))
    assert "removed 1 unfinished temporary file(s)" in report.summary()
    assert len(read_manifest(world.root)) == len(A2) + len(B1)
