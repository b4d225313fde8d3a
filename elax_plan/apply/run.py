"""One ``apply``: lease, plan, confirm, write with checkpoints, verify, summarise, release.

Owns the order of SPEC §5 and the state transitions around the pipeline: the
lease is taken first and released last (also on errors and interrupts); a
saved plan is refused when stale; preconditions stop before any write; the
ledger is written at least every ``CHECKPOINT_INTERVAL`` seconds and at file
boundaries (as often as saving stays a small share of the time: a ledger of
10,000 files is not rewritten 10,000 times), always fenced by the lease; events (lag samples, throttle
actions, retries, duplicate sequences) go to ``runs/<run_id>/events.ndjson``.
It never prints: the CLI passes callbacks for showing the plan, asking for
confirmation and reporting progress.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from elax_plan.apply.pipeline import FileRun, Pipeline, PipelineStats, file_rows
from elax_plan.apply.readers import ResumePoint
from elax_plan.apply.rejects import RejectPolicy
from elax_plan.apply.rows import RowMapper
from elax_plan.apply.throttle import RouterReading, Throttle
from elax_plan.apply.trim import TrimResult, trim_wal
from elax_plan.apply.verify import CheckResult, Verifier, overall
from elax_plan.apply.writer import RetryPolicy, Writer
from elax_plan.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_VERIFY_FAILED,
    ElaxError,
    StateError,
)
from elax_plan.execution_plan import ExecutionPlan, FileStep, PlanInputs, stale_reasons
from elax_plan.live.snapshot import observe
from elax_plan.live.store import StoreReader
from elax_plan.live.target import open_client
from elax_plan.planner import build_plan
from elax_plan.report.run_record import build_run_record, render_summary
from elax_plan.spec import PlanSpec, redact_value, reveal
from elax_plan.state import Heartbeat, Lease, acquire, open_backend
from elax_plan.state.backend import StateBackend
from elax_plan.state.ledger import (
    FileEntry,
    FileStatus,
    Ledger,
    LedgerStore,
    LedgerWriter,
    RunState,
    TargetIdentity,
    Verification,
)
from elax_plan.state.records import RunFiles, new_run_id, record_namespace_use

log = structlog.get_logger("elax_plan.apply")

CHECKPOINT_INTERVAL = 5.0
# A finished file is checkpointed at once unless the last save was less than this many times
# its own duration ago: saving then takes at most ~1/11 of the run, however many files.
BOUNDARY_SAVE_SPACING = 10.0


class StalePlan(ElaxError):
    """A saved plan whose inputs changed since it was computed."""


class PreconditionFailed(ElaxError):
    """A precondition failed; nothing was written."""


class NotApproved(ElaxError):
    """The operator declined, or no TTY and no ``--auto-approve``."""


@dataclass
class ApplyHooks:
    """How the CLI takes part: show the plan, confirm, report progress and events."""

    show_plan: Callable[[dict[str, Any]], None] = lambda _: None
    confirm: Callable[[dict[str, Any]], bool] | None = None  # None: approved
    on_start: Callable[[dict[str, Any]], None] = lambda _: None
    on_progress: Callable[[PipelineStats, Throttle], None] = lambda *_: None
    on_event: Callable[[str, dict[str, Any]], None] = lambda *_: None


@dataclass
class ApplyOptions:
    lock_timeout: float = 0.0
    summary_out: Path | None = None
    emulator_options: Mapping[str, Any] = field(default_factory=dict)
    lease_ttl: float = 60.0
    lease_renew: float = 10.0
    drain_timeout: float = 10.0


@dataclass
class ApplyOutcome:
    """What happened: the exit code, the run id and numbers for the final message."""

    exit_code: int
    run_id: str | None
    plan: dict[str, Any]
    stats: PipelineStats | None = None
    message: str = ""
    record: dict[str, Any] | None = None


class _Events:
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


def _entry_for(step: FileStep, ledger: Ledger) -> FileEntry:
    old = ledger.files.get(step.url)
    if step.action == "resume" and old is not None:
        return dataclasses.replace(old, status="partial")
    return FileEntry(
        url=step.url, fingerprint=step.fingerprint or "", size=step.size, status="pending"
    )


def _file_run(step: FileStep, entry: FileEntry) -> FileRun:
    start = (
        ResumePoint.from_dict(dict(step.resume_from))
        if step.action == "resume" and step.resume_from
        else ResumePoint()
    )
    return FileRun(
        url=step.url,
        fingerprint=entry.fingerprint,
        size=entry.size,
        start=start,
        committed=start,
        rows=entry.rows if step.action == "resume" else 0,
        bytes=entry.bytes if step.action == "resume" else 0,
        wal_first=entry.wal_first if step.action == "resume" else None,
        wal_last=entry.wal_last if step.action == "resume" else None,
    )


def _entry_of(fr: FileRun) -> FileEntry:
    status: FileStatus
    if fr.redo_from is not None:  # overwritten on the server after its checkpoint: redo
        status, resume = "partial", fr.redo_from
    elif fr.done:
        status, resume = "done", fr.committed
    else:
        status = "partial" if fr.rows or fr.committed != fr.start else "pending"
        resume = fr.committed
    return FileEntry(
        url=fr.url,
        fingerprint=fr.fingerprint,
        size=fr.size,
        status=status,
        resume=resume.to_dict(),
        rows=fr.rows,
        bytes=fr.bytes,
        wal_first=fr.wal_first,
        wal_last=fr.wal_last,
    )


class Checkpointer:
    """Keeps the ledger in memory and saves it (fenced) at file boundaries and every few seconds.

    A save rewrites the whole ledger, so its cost grows with the number of files: boundary
    saves are spaced by ``BOUNDARY_SAVE_SPACING`` times the last save's duration. Progress not
    saved yet is only re-sent after a crash (upserts are idempotent), never lost.
    """

    def __init__(
        self,
        writer: LedgerWriter,
        ledger: Ledger,
        events: _Events,
        run_files: RunFiles,
        rejects: list[bytes],
        interval: float = CHECKPOINT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.writer = writer
        self.clock = clock
        self.ledger = ledger
        self.events = events
        self.run_files = run_files
        self.rejects = rejects
        self.interval = interval
        self.last_save = clock()
        self.last_save_cost = 0.0
        self.lock = threading.Lock()
        # File progress since the last save; merged into the ledger when it is saved, so a
        # checkpoint costs O(1) instead of copying every file entry of a large ledger.
        self._entries: dict[str, FileEntry] = {}

    def update(self, fr: FileRun) -> None:
        entry = _entry_of(fr)
        previous = self._entries.get(fr.url) or self.ledger.files.get(fr.url)
        self._entries[fr.url] = entry
        since = self.clock() - self.last_save
        # A file marked for redoing is saved at once: its checkpoint moved back.
        moved_back = fr.redo_from is not None and (
            previous is None or previous.resume != entry.resume
        )
        if (
            moved_back
            or since >= self.interval
            or (fr.done and since >= self.last_save_cost * BOUNDARY_SAVE_SPACING)
        ):
            self.save()

    def update_run(self, **changes: Any) -> None:
        self.ledger = self.ledger.with_run(dataclasses.replace(self.ledger.run, **changes))

    def save(self) -> Ledger:
        with self.lock:
            started = self.clock()
            self.events.flush(self.run_files)
            if self.rejects:
                batch = list(self.rejects)
                self.rejects.clear()
                self.run_files.append_rejects([orjson.loads(line) for line in batch])
            if self._entries:
                files = {**self.ledger.files, **self._entries}
                self.ledger = dataclasses.replace(self.ledger, files=files)
                self._entries = {}
            self.ledger = self.writer.save(self.ledger)
            self.last_save = self.clock()
            self.last_save_cost = self.last_save - started
            return self.ledger


def apply_plan(
    spec: PlanSpec,
    *,
    saved: Mapping[str, Any] | None = None,
    hooks: ApplyHooks | None = None,
    options: ApplyOptions | None = None,
    stop: threading.Event | None = None,
    plan_file: str | None = None,
) -> ApplyOutcome:
    """Run SPEC §5 for ``spec`` (or exactly the ``saved`` plan); see the module docstring."""
    hooks = hooks or ApplyHooks()
    options = options or ApplyOptions()
    stop = stop or threading.Event()
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    lease = acquire(
        backend,
        spec.name,
        "apply",
        ttl=options.lease_ttl,
        wait=options.lock_timeout,
        plan_file=plan_file,
    )
    log.info("lease taken", lock_id=lease.lock_id, plan=spec.name)
    heartbeat = Heartbeat(lease, options.lease_renew, on_lost=lambda _: stop.set()).start()
    try:
        return _apply_locked(spec, backend, lease, heartbeat, saved, hooks, options, stop)
    finally:
        heartbeat.stop()
        try:
            lease.release()
        except StateError as exc:
            log.warning("lease not released", error=exc.message)
        # Bound by _apply_locked; a later apply in this process must not log under this run.
        structlog.contextvars.unbind_contextvars("run_id")


def _apply_locked(
    spec: PlanSpec,
    backend: StateBackend,
    lease: Lease,
    heartbeat: Heartbeat,
    saved: Mapping[str, Any] | None,
    hooks: ApplyHooks,
    options: ApplyOptions,
    stop: threading.Event,
) -> ApplyOutcome:
    snapshot = observe(spec, backend)
    plan = build_plan(spec, snapshot.live)
    doc = plan.to_json()
    if saved is not None:
        reasons = stale_reasons(PlanInputs.from_json(saved["inputs"]), plan.inputs)
        if reasons:
            raise StalePlan(
                f"Saved plan is stale: {'; '.join(reasons)}; run elax-plan plan again.",
            )
        doc = dict(saved)
    hooks.show_plan(doc)
    if not plan.preconditions_ok:
        raise PreconditionFailed(
            f"A precondition failed, so nothing was written: {plan.failed_preconditions()}."
        )
    if not plan.changes:
        return ApplyOutcome(EXIT_OK, None, doc, message="No changes: nothing to apply.")
    if saved is None and hooks.confirm is not None and not hooks.confirm(doc):
        raise NotApproved("Apply cancelled: nothing was written.")
    return _execute(
        spec,
        backend,
        lease,
        heartbeat,
        plan,
        doc,
        snapshot.live.namespace.epoch,
        hooks,
        options,
        stop,
    )


def _execute(
    spec: PlanSpec,
    backend: StateBackend,
    lease: Lease,
    heartbeat: Heartbeat,
    plan: ExecutionPlan,
    doc: dict[str, Any],
    epoch_at_start: int,
    hooks: ApplyHooks,
    options: ApplyOptions,
    stop: threading.Event,
) -> ApplyOutcome:
    t = spec.target
    ledger_writer = LedgerStore(backend, spec.name).claim(lease)
    identity = TargetIdentity.of(t.url, t.store, t.namespace)
    ledger = ledger_writer.ledger or Ledger.new(
        spec.name, identity, t.distance_metric, t.vector_dims
    )
    if (ledger.target.store, ledger.target.namespace) != (identity.store, identity.namespace):
        ledger = dataclasses.replace(ledger, target=identity, files={})
    record_namespace_use(
        backend,
        t.namespace,
        metric=t.distance_metric,
        vector_dims=t.vector_dims,
        plan_name=spec.name,
    )
    run_id = new_run_id()
    run_files = RunFiles(backend, spec.name, run_id)
    structlog.contextvars.bind_contextvars(run_id=run_id)
    events = _Events(hooks.on_event)
    rejects: list[bytes] = []
    started = time.time()
    previous = ledger.run
    resumed_run = previous.current_run_id
    writing = [s for s in plan.files if s.writes]
    # A run that writes nothing verifies (again) what the last run acknowledged.
    carried = bool(resumed_run) or not writing
    ledger = ledger.with_run(
        RunState(
            current_run_id=run_id,
            last_run_id=previous.last_run_id,
            started=started,
            first_acked_wal_sequence=previous.first_acked_wal_sequence if carried else None,
            last_acked_wal_sequence=previous.last_acked_wal_sequence,
            upserts_acked=previous.upserts_acked if carried else 0,
            resends=previous.resends if carried else 0,
            verification=Verification("pending"),
        )
    )
    runs = []
    for step in writing:
        entry = _entry_for(step, ledger)
        ledger = ledger.with_file(entry)
        runs.append(_file_run(step, entry))
    checkpoints = Checkpointer(ledger_writer, ledger, events, run_files, rejects)
    checkpoints.save()
    events("run_started", {"files": len(writing), "resumed_from_run": resumed_run})
    hooks.on_start(doc)
    log.info("apply started", files=len(writing), rows=plan.totals.rows)
    reader = StoreReader(t.store, t.storage_options)

    def read_router() -> RouterReading:
        ns = reader.read_namespace(t.namespace)
        return RouterReading(ns.wal_highwater, ns.indexed_wal)

    throttle = Throttle(
        read_router,
        max_wal_lag=spec.throttle.max_wal_lag,
        resume_wal_lag=spec.throttle.resume_wal_lag,
        poll_interval=spec.throttle.poll_interval,
        stall_timeout=spec.throttle.stall_timeout,
        stop=stop,
        on_event=events,
    )
    policy = RejectPolicy(
        spec.ingest.on_invalid_row,
        spec.ingest.max_invalid_rows,
        rejects.append,
        sink_name=run_files.location("rejects.ndjson"),
    )
    a = spec.source.attributes
    mapper = RowMapper(
        spec.source.id_field,
        spec.source.vector_field,
        a.include,
        a.rename,
        t.vector_dims,
    )
    with open_client(t, emulator_options=options.emulator_options) as client:
        writer = Writer(
            client,
            t.namespace,
            RetryPolicy(
                spec.ingest.retry.attempts, spec.ingest.retry.initial, spec.ingest.retry.max
            ),
            stop=stop,
            on_retry=lambda data: events("retry", data),
        )
        pipeline = Pipeline(
            runs,
            open_rows=file_rows(
                spec.source.format,
                spec.source.compression,
                dict(reveal(dict(spec.source.storage_options))),
                mapper.columns,
            ),
            mapper=mapper,
            writer=writer,
            throttle=throttle,
            rejects=policy,
            chunk_bytes=spec.ingest.chunk_bytes,
            max_request_bytes=t.max_request_bytes,
            concurrency=spec.ingest.concurrency,
            stop=stop,
            on_event=events,
            on_checkpoint=checkpoints.update,
            on_progress=lambda s: hooks.on_progress(s, throttle),
            drain_timeout=options.drain_timeout,
        )
        events.augment = lambda: {
            "rows_acked": pipeline.stats.rows_acked,
            "bytes_acked": pipeline.stats.bytes_acked,
        }
        report = _Report(spec, doc, run_id, run_files, started, events, policy, options)
        failure: BaseException | None = None
        try:
            pipeline.run()
        except BaseException as exc:
            failure = exc
        finally:
            run = checkpoints.ledger.run
            first = run.first_acked_wal_sequence
            if pipeline.stats.min_acked_seq is not None:
                first = min(first or pipeline.stats.min_acked_seq, pipeline.stats.min_acked_seq)
            checkpoints.update_run(
                first_acked_wal_sequence=first,
                last_acked_wal_sequence=max(
                    run.last_acked_wal_sequence or 0, pipeline.stats.max_acked_seq
                )
                or None,
                upserts_acked=run.upserts_acked + pipeline.stats.rows_acked,
                resends=run.resends + pipeline.stats.resends,
            )
            # Decided once: a stop that arrives after the last write goes to the verification,
            # which it interrupts, so the outcome agrees with the event written here.
            wrote_everything = failure is None and not stop.is_set()
            events(
                "writes_finished" if wrote_everything else "writes_stopped",
                {
                    "rows": pipeline.stats.rows_acked,
                    "bytes": pipeline.stats.bytes_acked,
                    "requests": pipeline.stats.requests,
                },
            )
            try:
                checkpoints.save()
            except StateError as exc:
                if failure is None:
                    failure = exc
        stats = pipeline.stats
        writes_finished = time.time()
        if failure is None:
            heartbeat.check()
        if failure is not None or not wrote_everything:
            outcome = "interrupted" if failure is None else "failed"
            error = None if failure is None else _describe(failure)
            report.write(outcome, stats, writes_finished, [], None, error)
            if failure is not None:
                raise failure
            return ApplyOutcome(
                EXIT_INTERRUPTED,
                run_id,
                doc,
                stats,
                message="Interrupted: the checkpoint is saved in "
                f"{ledger_writer_location(backend, spec.name)}; run `elax-plan apply` again "
                "to resume.",
            )
        ledger = checkpoints.ledger
        checks: list[CheckResult] = []
        if plan.verification_reason:
            checks = _verify(
                spec, client, reader, ledger, writing, stats, epoch_at_start, events, stop
            )
        passed = overall(checks)
        checks_digest = spec.verify.checks_digest()
        # Checks without a verdict (the index never caught up, a check could not run, an
        # interrupt) leave the verification pending: the next apply runs it again.
        unfinished = stop.is_set() or any(c.incomplete for c in checks)
        trim: TrimResult | None = None
        if spec.wal_trim.enabled and passed and not unfinished:
            try:
                trim = trim_wal(
                    reader,
                    t.namespace,
                    mode=spec.wal_trim.mode,
                    older_than=spec.wal_trim.older_than,
                    keep_last=spec.wal_trim.keep_last,
                )
            except ElaxError as exc:
                # Verified data, failed trim: still leave a complete summary; the next plan
                # shows the objects that remain eligible and apply trims them.
                location = report.write("failed", stats, writes_finished, checks, None, exc.message)
                checkpoints.update_run(
                    current_run_id=None,
                    last_run_id=run_id,
                    finished=time.time(),
                    verification=Verification("passed", location, checks_digest),
                )
                checkpoints.save()
                raise
            events("wal_trim", trim.to_json())
        if stop.is_set():
            outcome = "interrupted"
        else:
            outcome = "succeeded" if passed else "verification_failed"
        summary_location = report.write(outcome, stats, writes_finished, checks, trim, None)
        if unfinished:
            verification = Verification("pending", summary_location)
        elif checks:
            verification = Verification(
                "passed" if passed else "failed", summary_location, checks_digest
            )
        else:
            # Nothing needed verifying (e.g. a run that only trims the WAL): the last
            # verdict stands; the run's ledger entry was reset to pending when it started.
            verification = previous.verification
        checkpoints.update_run(
            # An unfinished verification keeps the run open, so the apply that finishes it
            # checks the same acknowledged WAL range and upsert count.
            current_run_id=run_id if unfinished else None,
            last_run_id=run_id,
            finished=time.time(),
            verification=verification,
        )
        checkpoints.save()
    if outcome == "interrupted":
        return ApplyOutcome(
            EXIT_INTERRUPTED,
            run_id,
            doc,
            stats,
            message="Interrupted during verification: the data is written; run `elax-plan "
            f"apply` again to finish the verification. Summary: {summary_location}",
            record=report.record,
        )
    if passed:
        return ApplyOutcome(
            EXIT_OK,
            run_id,
            doc,
            stats,
            message=f"Apply complete: {stats.rows_acked:,} rows written; every check passed. "
            f"Summary: {summary_location}",
            record=report.record,
        )
    failed = [c for c in checks if not c.passed]
    return ApplyOutcome(
        EXIT_VERIFY_FAILED,
        run_id,
        doc,
        stats,
        message="The data was written but verification failed: "
        + "; ".join(f"{c.title}: {c.detail}" for c in failed)
        + f". Summary: {summary_location}",
        record=report.record,
    )


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ElaxError) else f"{type(exc).__name__}: {exc}"


def _verify(
    spec: PlanSpec,
    client: Any,
    reader: StoreReader,
    ledger: Ledger,
    writing: list[FileStep],
    stats: PipelineStats,
    epoch_at_start: int,
    events: _Events,
    stop: threading.Event,
) -> list[CheckResult]:
    urls = {s.url for s in writing}
    run = ledger.run
    first, last = run.first_acked_wal_sequence, run.last_acked_wal_sequence
    wal_range = (first, last) if first is not None and last is not None else None
    verifier = Verifier(
        spec,
        client,
        lambda: reader.read_namespace(spec.target.namespace),
        last_acked_seq=run.last_acked_wal_sequence,
        wal_range=wal_range,
        upserts_acked=run.upserts_acked,
        resends=run.resends,
        # A run that only verifies cannot see its writes move the epoch any more.
        epoch_at_start=epoch_at_start if stats.requests else -1,
        source_urls=[f for f in ledger.files if ledger.files[f].status == "done"] or sorted(urls),
        stop=stop,
        on_event=events,
    )
    results = verifier.run()
    for r in results:
        events("check", {"key": r.key, "passed": r.passed, "detail": r.detail})
    return results


class _Report:
    """Builds, stores and writes the run record and its markdown summary."""

    def __init__(
        self,
        spec: PlanSpec,
        doc: dict[str, Any],
        run_id: str,
        run_files: RunFiles,
        started: float,
        events: _Events,
        policy: RejectPolicy,
        options: ApplyOptions,
    ) -> None:
        self.spec = spec
        self.doc = doc
        self.run_id = run_id
        self.run_files = run_files
        self.started = started
        self.events = events
        self.policy = policy
        self.options = options
        self.record: dict[str, Any] | None = None

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
        )
        record = redact_value(record)
        markdown = render_summary(record)
        self.events.flush(self.run_files)
        self.run_files.write_summary(markdown, record)
        self.record = record
        for path in (self.spec.summary.path, self.options.summary_out):
            if path is None:
                continue
            try:
                target = Path(path)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(markdown, encoding="utf-8")
            except OSError as exc:
                log.warning("summary not written", path=str(path), error=str(exc))
        return self.run_files.location("summary.md")


def ledger_writer_location(backend: StateBackend, plan_name: str) -> str:
    return LedgerStore(backend, plan_name).location
