"""Progress for people: a live bar on a terminal, periodic log lines otherwise.

Owns only presentation: the phase the run is in (writing, throttled, compacting,
proving delivery, waiting for the index, verifying …, from the run's events), the rows
and MiB acknowledged, the rate and the ETA, and the WAL lag the throttle acts on (its
estimate: the lag last read plus our writes since, not the bare reading, which is
often 0 between polls). The bar and the log lines show the same numbers.

Rate and ETA come from a moving window (``WINDOW_S``) of wall-clock time over the bytes
and rows acknowledged, pauses included: a run paused 76 % of the time shows the rate it
really makes, and its ETA counts the pauses still to come at the rate they came. A
window that spans less than ``MIN_SPAN_S`` shows no rate or ETA yet. Events (throttle
polls above all) refresh the display while no write is acknowledged, so a pause shows.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from elax_plan.apply.pipeline import PipelineStats
from elax_plan.apply.throttle import Throttle

log = structlog.get_logger("elax_plan.apply")

LOG_EVERY_S = 5.0
WINDOW_S = 20.0
"""Seconds of history the rate is measured over."""
MIN_SPAN_S = 2.0
"""No rate or ETA before the window spans this long."""
MIB = 1024 * 1024

# What each event says the run is doing now.
_PHASES: dict[str, str] = {
    "run_started": "writing",
    "throttle_pause": "throttled",
    "throttle_resume": "writing",
    "compaction_started": "compacting",
    "writes_finished": "proving delivery",
    "writes_stopped": "stopping",
    "resend": "re-sending lost rows",
    "wal_trim": "trimming the WAL",
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One progress reading, as the bar and the log line show it."""

    phase: str
    rows: int
    bytes: int
    rows_per_s: float | None
    bytes_per_s: float | None
    lag: int
    eta_s: float | None

    def detail(self) -> str:
        rate = (
            f"{self.rows_per_s:,.0f} rows/s · {self.bytes_per_s / MIB:,.2f} MiB/s"
            if self.rows_per_s is not None and self.bytes_per_s is not None
            else "rate …"
        )
        eta = f" · ETA {self.eta_s:,.0f}s" if self.eta_s is not None else ""
        return (
            f"{self.rows:,} rows · {self.bytes / MIB:,.1f} MiB · {rate} · "
            f"WAL lag {self.lag} (estimated){eta}"
        )

    def fields(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "rows": self.rows,
            "mib": round(self.bytes / MIB, 1),
            "rows_per_s": round(self.rows_per_s) if self.rows_per_s is not None else None,
            "mib_per_s": round(self.bytes_per_s / MIB, 2) if self.bytes_per_s is not None else None,
            "wal_lag": self.lag,
            "eta_s": round(self.eta_s) if self.eta_s is not None else None,
        }


class RateWindow:
    """Rows and bytes acknowledged per second of wall time over the last ``window`` seconds."""

    def __init__(self, window: float = WINDOW_S, min_span: float = MIN_SPAN_S) -> None:
        self.window = window
        self.min_span = min_span
        self.samples: deque[tuple[float, int, int]] = deque()

    def add(self, now: float, rows: int, nbytes: int) -> None:
        self.samples.append((now, rows, nbytes))
        # Keep one sample at or before the window's start, so the span covers the window.
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window:
            self.samples.popleft()

    def rates(self) -> tuple[float, float] | None:
        """(rows/s, bytes/s), or None while the samples span less than ``min_span``."""
        if len(self.samples) < 2:
            return None
        t0, r0, b0 = self.samples[0]
        t1, r1, b1 = self.samples[-1]
        span = t1 - t0
        if span < self.min_span:
            return None
        return (r1 - r0) / span, (b1 - b0) / span


class ProgressReporter:
    """Feeds either a rich progress bar (``live=True``) or log lines (``emit``)."""

    def __init__(
        self,
        live: bool,
        total_rows: int,
        total_bytes: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.total_rows = max(0, total_rows)
        self.total_bytes = max(0, total_bytes)
        self.clock = clock
        self.emit = emit or (lambda fields: log.info("progress", **fields))
        self.window = RateWindow()
        self.last_log = clock()
        self.phase = "writing"
        self.writing = True  # in the write phase (until writes_finished or writes_stopped)
        self.stats: PipelineStats | None = None
        self.throttle: Throttle | None = None
        self._lock = threading.Lock()
        self._progress: Any = None
        self._task: Any = None
        if live:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[detail]}"),
                transient=False,
            )
            self._task = self._progress.add_task(
                "writing", total=self.total_bytes or None, detail=""
            )
            self._progress.start()

    def __call__(self, stats: PipelineStats, throttle: Throttle) -> None:
        """An acknowledgement: new numbers."""
        self.stats, self.throttle = stats, throttle
        self.refresh()

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """A run event: maybe a new phase; throttle polls refresh the numbers while paused."""
        if kind in ("writes_finished", "writes_stopped"):
            self.writing = False
        elif kind == "resend":
            self.writing = True
        if kind in _PHASES:
            self.phase = _PHASES[kind]
        elif kind == "compaction":
            self.phase = self._writing_phase() if self.writing else "waiting for the index"
        elif kind == "check_started":
            wait = data.get("kind") == "wait_for_index"
            self.phase = "waiting for the index" if wait else f"verifying: {data.get('key')}"
        elif kind != "lag":
            return
        self.refresh()

    def _writing_phase(self) -> str:
        return "throttled" if self.throttle is not None and self.throttle.paused else "writing"

    def snapshot(self) -> Snapshot:
        """The numbers now (and a sample for the rate window while writing)."""
        stats, throttle = self.stats, self.throttle
        rows = stats.rows_acked if stats is not None else 0
        nbytes = stats.bytes_acked if stats is not None else 0
        now = self.clock()
        if self.writing:
            self.window.add(now, rows, nbytes)
        rates = self.window.rates() if self.writing else None
        eta = None
        if rates is not None and rates[1] > 0 and self.total_bytes:
            eta = max(0, self.total_bytes - nbytes) / rates[1]
        lag = throttle.acted_lag if throttle is not None else 0
        return Snapshot(
            self.phase,
            rows,
            nbytes,
            rates[0] if rates else None,
            rates[1] if rates else None,
            lag,
            eta,
        )

    def refresh(self) -> None:
        with self._lock:
            snap = self.snapshot()
            if self._progress is not None:
                self._progress.update(
                    self._task, completed=snap.bytes, detail=snap.detail(), description=snap.phase
                )
                return
            now = self.clock()
            if now - self.last_log >= LOG_EVERY_S:
                self.last_log = now
                self.emit(snap.fields())

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
