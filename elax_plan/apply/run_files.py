"""The run's own files under ``runs/<run_id>/``: its events, duplicates and summary.

Owns ``RunEvents`` (timestamped events — lag samples, throttle actions,
retries, overwritten writes — buffered and flushed to ``events.ndjson`` with
each checkpoint), ``WalGauge`` (the namespace's WAL size when the writes start
and when the record is written) and ``RunReport`` (the run record and its markdown summary,
stored with the run and copied to ``summary.path`` / ``--summary-out``, and the
ids read more than once, written to ``duplicates.ndjson`` when the run ends).
Both only record what the run did; neither decides anything. The record is
redacted before it is rendered, and each local copy again as it is written (the
state backends redact what they store).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from elax_plan.apply.duplicates import IdTracker
from elax_plan.apply.pipeline import PipelineStats
from elax_plan.apply.rejects import RejectPolicy
from elax_plan.apply.trim import TrimResult
from elax_plan.apply.verify import CheckResult
from elax_plan.errors import ElaxError
from elax_plan.live.store import StoreReader
from elax_plan.report.run_record import WalSize, build_run_record, render_summary
from elax_plan.spec import redact_bytes, redact_value
from elax_plan.state import RunFiles

log = structlog.get_logger("elax_plan.apply")

DUPLICATE_EXAMPLES = 10
"""Duplicated ids the run record (and so the summary) shows; duplicates.ndjson has them all."""


class RunEvents:
    """Buffers run events with timestamps; flushed to the run's events.ndjson with checkpoints.

    Lag samples also carry the rows and bytes acknowledged so far (``augment``), which is
    what the summary's throughput chart is computed from.
    """

    def __init__(self, forward: Callable[[str, dict[str, Any]], None]) -> None:
        self.forward = forward
        self.augment: Callable[[], dict[str, Any]] | None = None
        self.lock = threading.Lock()
        self.pending: list[dict[str, Any]] = []
        self.all: list[dict[str, Any]] = []
        self.start = time.time()

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        record = {"ts": round(time.time(), 3), "event": kind, **data}
        if kind == "lag" and self.augment is not None:
            record.update(self.augment())
        with self.lock:
            self.pending.append(record)
            self.all.append(record)
        self.forward(kind, data)

    def flush(self, files: RunFiles | None) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
        if files is not None and batch:
            files.append_events(batch)


class WalGauge:
    """The namespace's WAL (objects, bytes) read when made and again at each ``sizes()``.

    One listing, no object read. A listing that fails is logged and shown as unknown: it
    must never cost the run its summary.
    """

    def __init__(self, reader: StoreReader, namespace: str) -> None:
        self.reader = reader
        self.namespace = namespace
        self.start = self.read()

    def read(self) -> WalSize | None:
        try:
            wal = self.reader.list_wal(self.namespace)
        except ElaxError as exc:
            log.warning("WAL not listed", namespace=self.namespace, error=exc.message)
            return None
        return {"objects": len(wal), "bytes": sum(o.size for o in wal)}

    def sizes(self) -> tuple[str, WalSize | None, WalSize | None]:
        return self.namespace, self.start, self.read()


class RunReport:
    """Builds, stores and writes the run record and its markdown summary."""

    def __init__(
        self,
        summary_paths: tuple[Path | None, ...],
        doc: dict[str, Any],
        run_id: str,
        run_files: RunFiles,
        started: float,
        events: RunEvents,
        policy: RejectPolicy,
        ids: IdTracker | None = None,
        wal: WalGauge | None = None,
        operator: Mapping[str, Any] | None = None,
    ) -> None:
        self.summary_paths = summary_paths
        self.operator = operator
        self.doc = doc
        self.run_id = run_id
        self.run_files = run_files
        self.started = started
        self.events = events
        self.policy = policy
        self.ids = ids or IdTracker()
        self.wal = wal
        self.record: dict[str, Any] | None = None
        self._duplicates_written = False

    def duplicates(self) -> dict[str, Any]:
        """The run record's ``duplicates``; writes duplicates.ndjson the first time."""
        found = self.ids.duplicates()
        location = self.run_files.location(self.run_files.DUPLICATES)
        if found and not self._duplicates_written:
            self.run_files.append_duplicates([d.to_dict() for d in found])
        self._duplicates_written = True
        return {
            "rows": self.ids.duplicate_rows,
            "ids": len(found),
            "location": location,
            "examples": [d.to_dict() for d in found[:DUPLICATE_EXAMPLES]],
        }

    def write(
        self,
        outcome: str,
        stats: PipelineStats,
        writes_finished: float,
        checks: list[CheckResult],
        trim: TrimResult | None,
        error: str | None,
    ) -> str:
        """Store summary.json + summary.md with the run, copy to summary.path; its location."""
        record = build_run_record(
            run_id=self.run_id,
            plan_doc=self.doc,
            outcome=outcome,
            started=self.started,
            writes_finished=writes_finished,
            finished=time.time(),
            stats=dataclasses.asdict(stats),
            events=self.events.all,
            checks=[c.to_json() for c in checks],
            trim=trim.to_json() if trim is not None else None,
            rejects={
                "count": self.policy.count,
                "location": self.run_files.location("rejects.ndjson"),
            },
            error=error,
            state_location=self.run_files.location("summary.json"),
            duplicates=self.duplicates(),
            wal=self.wal.sizes() if self.wal is not None else None,
            operator=self.operator,
        )
        record = redact_value(record)
        markdown = render_summary(record)
        self.events.flush(self.run_files)
        self.run_files.write_summary(markdown, record)
        self.record = record
        for path in self.summary_paths:
            if path is None:
                continue
            try:
                target = Path(path)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(redact_bytes(markdown.encode("utf-8")))
            except OSError as exc:
                log.warning("summary not written", path=str(path), error=str(exc))
        return self.run_files.location("summary.md")
