"""A build runs with few cyclic collections, and the caller's collector settings come back after it."""

from __future__ import annotations

import gc

import pytest

from covid19_images.core.collections_pause import BUILD_THRESHOLD, fewer_collections, loaded_for_the_build


@pytest.fixture
def default_threshold():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_threshold_is_raised_inside_and_restored_after(default_threshold) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (BUILD_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_it_is_restored_when_the_build_raises(default_threshold) -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a parser crashed")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_caller_that_already_collects_less_often_keeps_its_setting(default_threshold) -> None:
    gc.set_threshold(500_000, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == 500_000
    assert gc.get_threshold() == (500_000, 10, 10)


def test_sync_leaves_the_callers_setting_as_it_found_it(default_threshold, tmp_path) -> None:
    from covid19_images.sync.run import sync
    from tests.conftest import new_root

    root = new_root(tmp_path / "root", [])
    sync(root, offline=True, progress=False)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0 and gc.isenabled()


class _Record:
    """A tracked object, as the memo's tuples of containers are."""


def _frozen(thing: object) -> bool:
    """Whether ``thing`` is in the permanent generation (``gc.get_objects`` lists the other three)."""
    return not any(tracked is thing for tracked in gc.get_objects())


def test_what_the_build_keeps_is_loaded_without_collections_and_frozen_until_the_build_ends() -> None:
    assert gc.get_freeze_count() == 0
    with fewer_collections():
        with loaded_for_the_build():
            assert not gc.isenabled()
            kept = [_Record() for _ in range(1000)]
        assert gc.isenabled()
        assert _frozen(kept[0]) and _frozen(kept[-1])
        with fewer_collections():  # a nested block does not unfreeze what the outer one keeps
            pass
        assert _frozen(kept[0])
    assert not _frozen(kept[0]) and gc.get_freeze_count() == 0 and gc.isenabled()


def test_outside_a_build_or_for_a_caller_that_freezes_nothing_is_frozen_or_unfrozen() -> None:
    mine = _Record()
    with loaded_for_the_build():
        assert gc.isenabled()
    assert not _frozen(mine) and gc.get_freeze_count() == 0
    theirs = _Record()
    gc.freeze()  # a caller that froze its own objects (before forking, say)
    try:
        with fewer_collections(), loaded_for_the_build():
            assert gc.isenabled()  # nothing disabled for a caller that freezes objects itself
            loaded = _Record()
        assert _frozen(theirs) and not _frozen(loaded)  # theirs left frozen, nothing of ours frozen
    finally:
        gc.unfreeze()


#: run as the ``covid19-images`` process runs (click's ``__call__``), reporting from an atexit
#: handler what the collector holds frozen and whether the manifest on disk is whole
EXITING = """
import atexit, gc, json, sys
root = sys.argv[1]

def report():
    from covid19_images.manifest.io import read_manifest
    manifest = read_manifest(root)
    print(json.dumps({"frozen": gc.get_freeze_count(), "rows": len(manifest)}), file=sys.stderr)

atexit.register(report)
from covid19_images.cli import main
sys.argv = ["covid19-images", "sync", "--offline", "--rebuild", "--quiet", "--root", root]
main()
"""


@pytest.mark.upstream
def test_the_command_process_leaves_what_it_holds_to_the_system_with_its_work_done(tmp_path, mirrors) -> None:
    """The process freezes what it holds before exiting (the interpreter's last collections skip it):
    the summary is printed, the manifest is written whole and the exit code is the command's."""
    import json
    import subprocess
    import sys

    from covid19_images.manifest.io import read_manifest
    from tests.conftest import build_synced_root

    root = build_synced_root(tmp_path, mirrors, ["ieee8023-covid-chestxray"])
    rows = len(read_manifest(root))
    (root / "manifests" / "manifest.csv").unlink()  # the rebuild must write it again
    (root / "manifests" / "manifest.csv.integrity").unlink()
    done = subprocess.run([sys.executable, "-c", EXITING, str(root)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"manifest: {rows} images" in done.stdout
    seen = json.loads(done.stderr.strip().splitlines()[-1])
    assert seen["rows"] == rows and seen["frozen"] > 1000


def test_a_command_run_inside_a_living_process_freezes_nothing(tmp_path) -> None:
    """``CliRunner`` (and any caller of ``main.main``) keeps collecting as before: only the process
    entry freezes."""
    from click.testing import CliRunner

    from covid19_images.cli import main
    from tests.conftest import new_root

    root = new_root(tmp_path / "root", [])
    result = CliRunner().invoke(main, ["sync", "--root", str(root), "--offline", "--quiet"])
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == 0
    main(["sync", "--root", str(root), "--offline", "--quiet"], standalone_mode=False)  # returns, no exit
    assert gc.get_freeze_count() == 0


#: a sync in a fresh process, whose build reports which objects are frozen when it starts
LIBRARIES_FROZEN = """
import gc, json, sys
import covid19_images.sync.run as run

real = run.build_manifest
seen = {}

def frozen(thing):
    return not any(tracked is thing for tracked in gc.get_objects())

def build_manifest(*args, **kwargs):
    import pandas, scipy.sparse.csgraph
    seen["pandas"] = frozen(pandas.DataFrame.merge)
    seen["scipy"] = frozen(scipy.sparse.csgraph.connected_components)
    seen["disabled"] = not gc.isenabled()
    return real(*args, **kwargs)

assert "pandas" not in sys.modules  # the build's libraries load in the build, not before
run.build_manifest = build_manifest
run.sync(sys.argv[1], offline=True, rebuild=True, progress=False)
seen["after"] = gc.get_freeze_count()
print(json.dumps(seen))
"""


@pytest.mark.upstream
def test_a_changed_syncs_libraries_load_without_collections_and_stay_frozen_for_the_build(tmp_path, mirrors) -> None:
    """pandas, SciPy and the build's modules (about 100,000 objects that live as long as the process)
    are not walked by the collector while they load, nor during the build; afterwards the caller's
    collector holds nothing frozen."""
    import json
    import subprocess
    import sys

    from tests.conftest import build_synced_root

    root = build_synced_root(tmp_path, mirrors, ["ieee8023-covid-chestxray"])
    done = subprocess.run(
        [sys.executable, "-c", LIBRARIES_FROZEN, str(root)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"pandas": True, "scipy": True, "disabled": False, "after": 0}
