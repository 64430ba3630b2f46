"""Timing helpers shared by the benchmarks: wall clock *and* CPU time, paired rounds.

The benchmark machine is a shared 2-vCPU VM: identical runs of one pipeline come out
either at full speed or ~1.8x slower (the process gets one core instead of two), with
no change on our side. Three defences: baseline and candidate run in alternating rounds;
the headline ratio compares the *best* run of each (the run least disturbed; noise only
ever adds time); and CPU seconds per image (this process plus its finished children,
i.e. DataLoader workers) are reported too, which contention inflates far less. The
per-round median ratio is kept as well, for the sceptical reader.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Timing:
    wall: float
    cpu: float


def measure(run: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), _cpu()
    run()
    return Timing(time.perf_counter() - wall, _cpu() - cpu)


@dataclass
class Series:
    """Repeated timings of one pipeline over ``items`` images per run."""

    items: int
    runs: list[Timing] = field(default_factory=list)

    def add(self, timing: Timing) -> None:
        self.runs.append(timing)

    @property
    def best_rate(self) -> float:
        return self.items / min(t.wall for t in self.runs)

    @property
    def cpu_ms_per_image(self) -> float:
        return 1000 * statistics.median(t.cpu for t in self.runs) / self.items

    def summary(self) -> dict:
        return {
            "img_s_best": round(self.best_rate, 1),
            "img_s_median": round(self.items / statistics.median(t.wall for t in self.runs), 1),
            "cpu_ms_per_img": round(self.cpu_ms_per_image, 2),
            "wall_s": [round(t.wall, 2) for t in self.runs],
        }


def paired_ratio(baseline: Series, candidate: Series) -> float:
    """Median over rounds of baseline_time / candidate_time (same items per run)."""
    ratios = [
        (b.wall / baseline.items) / (c.wall / candidate.items)
        for b, c in zip(baseline.runs, candidate.runs, strict=False)
    ]
    return round(statistics.median(ratios), 2)


def best_ratio(baseline: Series, candidate: Series) -> float:
    """Best candidate throughput over best baseline throughput."""
    return round(candidate.best_rate / baseline.best_rate, 2)


def cpu_ratio(baseline: Series, candidate: Series) -> float:
    return round(baseline.cpu_ms_per_image / candidate.cpu_ms_per_image, 2)


def best_of(call: Callable[[], object], rounds: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the best of ``rounds`` calls, rounded to the millisecond.

    The CPU figure is this process's own (``time.process_time``): what a single-threaded
    read or write costs, whatever else the machine runs.
    """
    best = (float("inf"), float("inf"))
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return round(best[0], 3), round(best[1], 3)
