"""Progress for people: a live bar on a terminal, periodic log lines otherwise.

Owns only presentation of ``PipelineStats`` and the throttle state (rows, MB,
rows/s, WAL lag, running/throttled, an ETA that leaves out time spent paused).
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from elax_plan.apply.pipeline import PipelineStats
from elax_plan.apply.throttle import Throttle

log = structlog.get_logger("elax_plan.apply")

LOG_EVERY_S = 5.0


class ProgressReporter:
    """Feeds either a rich progress bar (``live=True``) or log lines."""

    def __init__(self, live: bool, total_rows: int, total_bytes: int) -> None:
        self.total_rows = max(0, total_rows)
        self.total_bytes = max(0, total_bytes)
        self.start = time.monotonic()
        self.last_log = self.start
        self._progress: Any = None
        self._task: Any = None
        if live:
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
            )

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
        now = time.monotonic()
        active = max(1e-6, now - self.start - throttle.paused_seconds)
        rows_per_s = stats.rows_acked / active
        bytes_per_s = stats.bytes_acked / active
        reading = throttle.last_reading
        lag = reading.lag if reading is not None else 0
        state = "throttled" if throttle.paused else "running"
        remaining = max(0, self.total_bytes - stats.bytes_acked)
        eta = remaining / bytes_per_s if bytes_per_s > 0 and self.total_bytes else None
        detail = (
            f"{stats.rows_acked:,} rows · {stats.bytes_acked / 1e6:,.1f} MB · "
            f"{rows_per_s:,.0f} rows/s · WAL lag {lag} · {state}"
            + (f" · ETA {eta:,.0f}s" if eta is not None else "")
        )
        if self._progress is not None:
            self._progress.update(
                self._task, completed=stats.bytes_acked, detail=detail, description=state
            )
        elif now - self.last_log >= LOG_EVERY_S:
            self.last_log = now
            log.info(
                "progress",
                rows=stats.rows_acked,
                mb=round(stats.bytes_acked / 1e6, 1),
                rows_per_s=round(rows_per_s),
                wal_lag=lag,
                state=state,
                eta_s=round(eta) if eta is not None else None,
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
