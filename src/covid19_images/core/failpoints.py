"""Test-only fault injection: stop or kill this process at a named point of a sync.

The crash-safety promise ("an interrupted sync never loses the last good manifest, and the
next sync completes") can only be tested by really killing a sync at every step that
matters. Sync, git plumbing and manifest writing call :func:`checkpoint` at those steps;
with none of the variables below set it costs one dictionary lookup and does nothing.

``COVID19_IMAGES_KILL_AT=<name>[:<n>]``  SIGKILL ourselves at the n-th (default first) time
``<name>`` is reached. ``COVID19_IMAGES_STOP_AT`` does the same with SIGSTOP (the test
resumes us with SIGCONT), to hold the sync lock while a second sync is started.
``COVID19_IMAGES_TRACE_CHECKPOINTS=<file>`` appends ``<name>:<n>`` for every checkpoint
reached, so a test can enumerate the points of a real run and then kill at each of them.
"""

from __future__ import annotations

import os
import signal

KILL_ENV = "COVID19_IMAGES_KILL_AT"
STOP_ENV = "COVID19_IMAGES_STOP_AT"
TRACE_ENV = "COVID19_IMAGES_TRACE_CHECKPOINTS"
_ENVS = (KILL_ENV, STOP_ENV, TRACE_ENV)
_counts: dict[str, int] = {}


def _matches(spec: str, name: str, count: int) -> bool:
    target, _, nth = spec.partition(":")
    return target == name and count == (int(nth) if nth.isdigit() else 1)


def checkpoint(name: str) -> None:
    """A named point where a crash must be survivable (no-op unless a fault variable is set)."""
    environ = os.environ
    if not any(key in environ for key in _ENVS):
        return
    count = _counts[name] = _counts.get(name, 0) + 1
    trace = environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{name}:{count}\n")
    if _matches(environ.get(STOP_ENV, ""), name, count):
        os.kill(os.getpid(), signal.SIGSTOP)
    if _matches(environ.get(KILL_ENV, ""), name, count):
        os.kill(os.getpid(), signal.SIGKILL)


def reset() -> None:
    """Forget how often each point was reached, so an in-process test counts from one again."""
    _counts.clear()
