"""``covid19-images sync`` with a wall clock around each of its stages: where a changed sync's time goes.

    PYTHONPATH=src python benchmarks/sync_phases.py OUT.json sync --mirror M --quiet

Runs the command as ``python -m covid19_images.cli`` would, after wrapping the functions in
:data:`STAGES` with timers; at exit it writes each stage's inclusive wall seconds (summed over its
calls) and the process's total to ``OUT.json``. A stage that no longer exists under its name stops
the run: a renamed function must be renamed here, not silently left out of the breakdown.

Why not cProfile: it charges every Python call, so it inflates the per-row Python loops of a
build two- to threefold against the C work around them, and the breakdown would mislead. These
timers cost one call per stage call. The libraries a changed build loads are imported up front
and timed as one stage (``imports.build``): the functions that use them must exist to be wrapped,
and a sync imports them lazily, inside its build, only when something changed.
"""

from __future__ import annotations

import atexit
import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

#: (label, module, attribute path): the breakdown's stages, outermost first. Nested stages are
#: inclusive; a function is wrapped where its caller looks it up (the caller's module).
STAGES: tuple[tuple[str, str, str], ...] = (
    ("sync", "covid19_images.sync.run", "sync"),
    ("git.status_and_fetch", "covid19_images.sync.run", "ask_ahead"),
    ("git.move", "covid19_images.sync.run", "update_source"),
    ("unchanged_check", "covid19_images.sync.run", "reuse_unchanged"),
    ("build", "covid19_images.sync.run", "_build"),
    ("build.read_previous_manifest", "covid19_images.sync.run", "_previous_manifest"),
    ("build.manifest", "covid19_images.manifest.build", "build_manifest"),
    ("build.manifest.changed_source", "covid19_images.manifest.build", "build_source"),
    ("build.manifest.changed_source.checkout_state", "covid19_images.manifest.source_build", "checkout_state"),
    ("build.manifest.row_memo_load", "covid19_images.manifest.build", "RowMemo.load"),
    ("build.manifest.row_memo_save", "covid19_images.manifest.build", "RowMemo.save"),
    ("build.manifest.changed_source.parse", "covid19_images.manifest.source_build", "_entries"),
    ("build.manifest.changed_source.known_facts", "covid19_images.manifest.source_build", "known_facts"),
    ("build.manifest.changed_source.carried_rows", "covid19_images.manifest.source_build", "with_carried"),
    ("build.manifest.near_index_load", "covid19_images.manifest.build", "NearIndex.load"),
    ("build.manifest.duplicates", "covid19_images.manifest.build", "find_duplicates"),
    ("build.manifest.splits", "covid19_images.manifest.build", "assign_splits"),
    ("build.manifest.annotations", "covid19_images.manifest.build", "_join_annotations"),
    ("build.manifest.record", "covid19_images.manifest.build", "record_build"),
    ("build.diff", "covid19_images.manifest.diff", "diff_manifests"),
    ("build.split_moves", "covid19_images.manifest.splits", "explain_split_moves"),
    ("build.shrinks", "covid19_images.sync.shrink", "find_shrinks"),
    ("write", "covid19_images.manifest.build", "write_manifest"),
    ("write.manifest_csv_bytes", "covid19_images.manifest.build", "manifest_bytes"),
    ("write.integrity_records", "covid19_images.manifest.build", "integrity.write_record"),
    ("write.atomic_files", "covid19_images.manifest.build", "write_atomic"),
    ("write.caches", "covid19_images.manifest.build", "SourceCache.save"),
    ("write.near_index", "covid19_images.manifest.build", "NearIndex.save"),
    ("write.sync_record", "covid19_images.sync.run", "write_sync_record"),
)

#: what a build imports that a sync with nothing changed does not (tests/sync/test_sync_unchanged.py)
BUILD_IMPORTS = (
    "numpy",
    "pyarrow",
    "pyarrow.csv",
    "pandas",
    "PIL.Image",
    "scipy.sparse.csgraph",
    "pydicom",
)
#: what a sync that moved a source without DICOM files loads of those (the one-image sync: since the identified
#: source is reused from its guarded cache, pydicom is not among them; tests/sync/test_sync_unchanged.py)
CHANGED_SYNC_IMPORTS = tuple(name for name in BUILD_IMPORTS if name != "pydicom")
#: What the phased sync imports up front: those libraries and the build's own modules.
BUILD_MODULES = (
    *CHANGED_SYNC_IMPORTS,
    "covid19_images.manifest.build",
    "covid19_images.manifest.diff",
    "covid19_images.manifest.splits",
    "covid19_images.sync.shrink",
)


def _timed(label: str, function: Callable, seconds: dict[str, float]) -> Callable:
    """``function`` timed into ``seconds[label]``; a call inside a call of the same stage (``build_manifest``
    builds again when a guarded source must be read) is counted once, in the outer call."""
    running = [0]

    def timed(*args, **kwargs):
        started = time.perf_counter()
        running[0] += 1
        try:
            return function(*args, **kwargs)
        finally:
            running[0] -= 1
            if not running[0]:
                seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - started

    return timed


def wrap_stages(seconds: dict[str, float]) -> None:
    """Replace every stage's function by a timed one; raise when one is not found (renamed, removed)."""
    for label, module_name, attribute in STAGES:
        owner: object = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        function = getattr(owner, name, None)
        if not callable(function):
            raise SystemExit(f"sync_phases: stage {label!r}: {module_name}.{attribute} is gone; update STAGES")
        setattr(owner, name, _timed(label, function, seconds))


def main(out: Path, argv: list[str]) -> None:
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    import covid19_images.cli  # noqa: F401 - the command, as its process imports it first

    seconds["imports.command"] = time.perf_counter() - started
    loaded = time.perf_counter()
    for module in BUILD_MODULES:
        importlib.import_module(module)
    seconds["imports.build"] = time.perf_counter() - loaded
    wrap_stages(seconds)

    def write() -> None:
        seconds["process_after_interpreter"] = time.perf_counter() - started
        out.write_text(json.dumps({k: round(v, 3) for k, v in seconds.items()}, indent=1), encoding="utf-8")

    atexit.register(write)
    sys.argv = ["covid19-images", *argv]
    from covid19_images.cli import main as command

    command()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
