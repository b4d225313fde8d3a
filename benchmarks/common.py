"""Helpers the benchmarks share: repeated timings with medians, the machine's description.

Timings record both wall time and the process's CPU time. On this project's shared 2-core
machine other work steals the CPU at random moments; for a single-threaded loop pinned to one
core, CPU time is the figure "rows per second on one core" asks for, and wall time is kept next
to it so that a reader can see how much the machine's noise moved it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog

T = TypeVar("T")


@dataclass
class Timing:
    """Seconds of each run of one measurement: wall clock and this process's CPU time."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_s": [round(t, 4) for t in self.wall],
            "cpu_s": [round(t, 4) for t in self.cpu],
            "wall_median_s": round(self.wall_median, 4),
            "cpu_median_s": round(self.cpu_median, 4),
        }


def timed(repeats: int, run: Callable[[], object], timing: Timing | None = None) -> Timing:
    """Run ``run`` ``repeats`` times; add each run's wall and CPU seconds to ``timing``."""
    timing = timing or Timing()
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        timing.cpu.append(time.process_time() - cpu)
        timing.wall.append(time.perf_counter() - wall)
    return timing


def interleaved(repeats: int, runs: dict[str, Callable[[], object]]) -> dict[str, Timing]:
    """Time several measurements in turn (A B C A B C …) so that noise spreads over all."""
    timings = {name: Timing() for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            timed(1, run, timings[name])
    return timings


def in_fresh_process(run: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``run(*args, **kwargs)`` in a new interpreter (spawned, not forked); its result.

    Figures that depend on how a process happens to lay out its memory (a loop over 170 MB
    of lines, say) move by several per cent from one process to the next while staying
    within 1 % inside one: measuring in several fresh processes shows that spread.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run, *args, **kwargs).result()


def pin_to_one_core() -> set[int] | None:
    """Pin this process to one CPU; return the previous set (for ``unpin``), None if unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {sorted(before)[0]})
    return before


def unpin(before: set[int] | None) -> None:
    if before is not None:
        os.sched_setaffinity(0, before)


def quiet_logs() -> None:
    """Keep elax-plan's in-process debug logs (plan loading, leases) off the benchmark output."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def machine() -> dict[str, Any]:
    """The machine a result was measured on."""
    return {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.machine(),
    }


def write_plan(
    path: Path,
    *,
    name: str,
    url: str,
    store: str,
    namespace: str,
    source: str | Path,
    state: str,
    vector_dims: int | None = None,
    sections: str = "",
    target_extra: str = "",
) -> Path:
    """A benchmark's plan file: cosine target, one source, state; ``sections`` adds YAML
    (``ingest:``, ``throttle:``…) verbatim, ``target_extra`` lines of the target section."""
    dims = f"  vector_dims: {vector_dims}\n" if vector_dims is not None else ""
    dims += target_extra
    path.write_text(
        f"""version: 1
name: {name}
target:
  url: {url}
  store: {store}
  namespace: {namespace}
  distance_metric: cosine
{dims}source:
  uri: {source}
{sections}state:
  uri: {state}
"""
    )
    return path
