"""Fewer garbage collections while a build allocates millions of short-lived, acyclic objects.

A sync at 50,000 images loads the row memo (about a million tuples and strings) and creates a
row object per image several times over. CPython's cyclic collector runs a young-generation pass
every 700 allocations and, every so often, a full pass over every live object: with the memo
alive, those full passes cost about a second of a one-image sync (measured, docs/benchmarks.md).
Nothing a build makes relies on the cycle collector to be freed in time (reference counting frees
it), so the build runs with a much higher threshold and the caller's settings come back after.

The row memo is the one large structure that lives through the whole build. It is unpickled with
no collection at all (each would walk the records loaded so far) and then frozen (``gc.freeze``:
later collections skip it) until the build ends: 0.2-0.3 s less CPU for a one-image sync of
200,000 images, measured (docs/benchmarks.md, round twelve). Only inside :func:`fewer_collections`,
and only when nothing was frozen before it (a process that freezes objects itself, before forking
workers say, is left alone); everything frozen is unfrozen when the outermost one exits.

A ``covid19-images`` process that is about to exit freezes everything it holds
(:func:`freeze_for_exit`): the interpreter's last collections then skip it, and the memory goes
back to the system with the process, as it would anyway.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between two young-generation passes during a build (CPython's default is 700).
BUILD_THRESHOLD = 100_000

#: ``fewer_collections`` blocks running now, and whether the outermost may freeze objects.
_state = {"depth": 0, "may_freeze": False}


@contextmanager
def fewer_collections(threshold: int = BUILD_THRESHOLD) -> Iterator[None]:
    """Run the block with the young-generation threshold at least ``threshold``; restore it after,
    and unfreeze what :func:`loaded_for_the_build` froze in it."""
    before = gc.get_threshold()
    gc.set_threshold(max(threshold, before[0]), *before[1:])
    outermost = _state["depth"] == 0
    if outermost:
        _state["may_freeze"] = gc.get_freeze_count() == 0
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if outermost:
            if _state["may_freeze"] and gc.get_freeze_count():
                gc.unfreeze()
            _state["may_freeze"] = False
        gc.set_threshold(*before)


@contextmanager
def loaded_for_the_build() -> Iterator[None]:
    """Load, inside :func:`fewer_collections`, a large structure the build keeps (the row memo, the
    libraries a changed sync imports): no collection while it loads, and every object tracked then
    frozen once it is loaded."""
    if not _state["may_freeze"]:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def freeze_for_exit() -> None:
    """Move every object to the permanent generation, for a process that exits next.

    Why: at exit the interpreter walks every tracked object again and frees the garbage held in
    cycles (the build's frames and the row memo among them): 0.24-0.40 s of a sync at 50,000
    images, after its last line was printed (0.06-0.08 s frozen; docs/benchmarks.md, round
    fifteen). Nothing is lost: Python does not promise ``__del__`` for objects alive at exit, the
    files a command writes are closed (and synced) by the command itself, and atexit handlers,
    ``weakref.finalize`` callbacks and the standard streams' flush still run. Only for a process
    that exits next: anything frozen that later becomes cyclic garbage is never collected.
    """
    gc.freeze()
