"""One ``apply``: lease, decide, confirm, write with checkpoints, verify, trim, summarise, release.

Owns the order of SPEC §5 and nothing else. ``apply_plan`` takes the plan's lease and
its namespace's lease first and releases them last (also on errors and interrupts;
``leases`` says why the namespace lease covers the whole run); ``ApplyRun`` then
runs one method per phase over one run context:

- ``decide``: re-read live state and plan; a saved plan is refused when stale,
  otherwise *its* steps are the ones carried out; preconditions (judged on the
  live state now) stop before any write; the operator confirms.
- ``open_ledger``: the run's ledger entries for the plan's file steps.
- ``write``: the plan's file steps through the pipeline, checkpointed
  (``checkpoints``), events and summary in the run's files (``run_files``).
- ``account``: a run that read rows and acknowledged none fails here (the
  pipeline has checked that every row read was acknowledged or rejected).
- ``deliver``: every acknowledged write is proven against the WAL (``proof``), and
  rows it lost are written again in this run.
- ``index``: ``indexer.mode: command`` indexes once after the last write (``indexer``).
- ``verify``: the plan's check steps, each by its kind's executor (``verify``).
- ``trim``: the plan's WAL-trim step, if any, once verification passed.
- ``finish``: the verdict in the ledger, the summary, the outcome.

Every step comes from the execution plan that was shown (or given): nothing
here re-derives a step from the plan file. It never prints: the CLI passes
callbacks for showing the plan, asking for confirmation and reporting progress.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass

import structlog

from elax_plan.apply import proof as proof_of
from elax_plan.apply.checkpoints import (
    Checkpointer,
    entry_for,
    file_run,
    resend_run,
    run_state,
    upgraded_fingerprints,
)
from elax_plan.apply.context import ApplyHooks, ApplyOptions, ApplyOutcome, RunContext
from elax_plan.apply.indexer import compactor_for
from elax_plan.apply.leases import RunLeases
from elax_plan.apply.operator import operator_facts
from elax_plan.apply.outcome import RunFilesAt, closing, interrupted_writes, nothing_written
from elax_plan.apply.pipeline import FileRun, Pipeline, PipelineStats, file_rows
from elax_plan.apply.rejects import RejectPolicy
from elax_plan.apply.rows import RowMapper
from elax_plan.apply.run_files import RunEvents, RunReport, WalGauge
from elax_plan.apply.samples import sampler
from elax_plan.apply.throttle import RouterReading, Throttle
from elax_plan.apply.trim import TrimResult, trim_step
from elax_plan.apply.verify import CheckResult, VerifyContext, overall, run_checks
from elax_plan.apply.write_proofs import Prover, WriteProofs
from elax_plan.apply.writer import Writer
from elax_plan.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    ElaxError,
    NotApproved,
    PreconditionFailed,
    StalePlan,
    StateError,
    describe,
)
from elax_plan.execution_plan import ExecutionPlan, stale_reasons
from elax_plan.live.model import NamespaceLive
from elax_plan.live.snapshot import observe
from elax_plan.live.store import StoreReader
from elax_plan.live.target import TargetClient, open_client
from elax_plan.planner import build_plan
from elax_plan.retry import Interrupted, Retrier
from elax_plan.spec import PlanSpec, reveal
from elax_plan.state import (
    Ledger,
    LedgerStore,
    RunFiles,
    TargetIdentity,
    Verification,
    new_run_id,
    open_backend,
    record_namespace_use,
)

log = structlog.get_logger("elax_plan.apply")


def apply_plan(
    spec: PlanSpec,
    *,
    saved: ExecutionPlan | None = None,
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
    leases = RunLeases(backend, spec, options, hooks, stop, plan_file)
    try:
        lease, heartbeat = leases.take()
    except Interrupted:
        # Ctrl-C while --lock-timeout waited: nothing was planned or written.
        message = "Interrupted while waiting for a lease held by another run: nothing was written."
        return ApplyOutcome(EXIT_INTERRUPTED, None, {}, message=message)
    try:
        ctx = RunContext(spec, backend, lease, heartbeat, hooks, options, stop)
        return ApplyRun(ctx).execute(saved)
    finally:
        leases.release()
        # Bound by ApplyRun; a later apply in this process must not log under this run.
        structlog.contextvars.unbind_contextvars("run_id")


@dataclass
class _Written:
    """What the write phase left for the phases after it."""

    stats: PipelineStats
    finished_at: float
    complete: bool  # every file step written, no failure, no stop


# Proofs of a run's writes, each after re-sending what the last one found lost.
DELIVERY_ROUNDS = 20


class ApplyRun:
    """One run of one execution plan; the phases in order (see the module docstring)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.events = RunEvents(ctx.hooks.on_event)
        self.retrier = Retrier(
            ctx.retry_policy, stop=ctx.stop, on_retry=lambda data: self.events("retry", data)
        )
        t = ctx.spec.target
        self.reader = StoreReader(t.store, t.storage_options)
        self.rejects: list[bytes] = []
        # File key (display URL, as in the plan and ledger) → URL to read, where they differ.
        self.read_urls: dict[str, str] = {}

    # --- decide ---------------------------------------------------------------------------

    def execute(self, saved: ExecutionPlan | None) -> ApplyOutcome:
        self.events("plan_started", {})  # the summary's phases start here
        plan = self.decide(saved)
        doc = plan.to_json()
        if not plan.changes:
            return ApplyOutcome(EXIT_OK, None, doc, message="No changes: nothing to apply.")
        self.plan, self.doc = plan, doc
        self.open_ledger()
        t = self.ctx.spec.target
        with open_client(t, emulator_options=self.ctx.emulator_options) as client:
            written = self.write(client)
            if not written.complete:
                return self.stopped(written)
            self.account(written)
            written = self.deliver(client, written)
            if not written.complete:
                return self.stopped(written)
            self.index(written)
            checks = self.verify(client, written.stats)
            unfinished = self.ctx.stop.is_set() or any(c.incomplete for c in checks)
            trim = self.trim(written, checks) if overall(checks) and not unfinished else None
            return self.finish(written, checks, trim, unfinished)

    def decide(self, saved: ExecutionPlan | None) -> ExecutionPlan:
        """The plan to carry out: the saved one, or a fresh one as shown."""
        ctx = self.ctx
        snapshot = observe(ctx.spec, ctx.backend, retrier=self.retrier)
        self.proof, self.at_start = snapshot.proof, snapshot.live.namespace
        self.read_urls = snapshot.live.source.read_urls()
        fresh = build_plan(ctx.spec, snapshot.live)
        if saved is not None:
            reasons = stale_reasons(saved.inputs, fresh.inputs)
            if reasons:
                raise StalePlan(
                    f"Saved plan is stale: {'; '.join(reasons)}; run elax-plan plan again.",
                )
        # What is shown is what runs: the document's own steps, read back from it.
        plan = ExecutionPlan.from_json((saved or fresh).to_json())
        ctx.hooks.show_plan(plan.to_json())
        # Preconditions are judged on the live state now, also for a saved plan.
        if not fresh.preconditions_ok:
            raise PreconditionFailed(
                f"A precondition failed, so nothing was written: {fresh.failed_preconditions()}."
            )
        if (
            plan.changes
            and saved is None
            and ctx.hooks.confirm is not None
            and not ctx.hooks.confirm(plan.to_json())
        ):
            raise NotApproved("Apply cancelled: nothing was written.")
        return plan

    # --- open the ledger ------------------------------------------------------------------

    def open_ledger(self) -> None:
        """Claim the ledger, start this run in it, and add an entry per file step to write."""
        ctx, t = self.ctx, self.ctx.spec.target
        ledger_writer = LedgerStore(ctx.backend, ctx.spec.name).claim(ctx.lease)
        identity = TargetIdentity.of(t.url, t.store, t.namespace)
        ledger = ledger_writer.ledger or Ledger.new(
            ctx.spec.name, identity, t.distance_metric, t.vector_dims
        )
        if (ledger.target.store, ledger.target.namespace) != (identity.store, identity.namespace):
            ledger = dataclasses.replace(ledger, target=identity, files={})
        elif self.proof is not None:
            # Writes proven before this run keep their WAL object's stamp: the next proof
            # re-reads only what changed.
            ledger = dataclasses.replace(ledger, files=proof_of.stamped(ledger.files, self.proof))
        record_namespace_use(
            ctx.backend,
            t.namespace,
            metric=t.distance_metric,
            vector_dims=t.vector_dims,
            plan_name=ctx.spec.name,
        )
        self.run_id = new_run_id()
        self.run_files = RunFiles(ctx.backend, ctx.spec.name, self.run_id)
        structlog.contextvars.bind_contextvars(run_id=self.run_id)
        self.started = time.time()
        self.previous = ledger.run
        self.writing = [s for s in self.plan.files if s.writes]
        lost = self.proof.lost_upserts if self.proof is not None else 0
        highwater = self.at_start.wal_highwater
        run = run_state(ledger.run, self.run_id, self.started, bool(self.writing), lost, highwater)
        ledger = upgraded_fingerprints(self.plan.files, ledger.with_run(run))
        self.file_runs: list[FileRun] = []
        for step in self.writing:
            entry = entry_for(step, ledger)
            ledger = ledger.with_file(entry)
            self.file_runs.append(file_run(step, entry))
        self.checkpoints = Checkpointer(
            ledger_writer, ledger, self.events, self.run_files, self.rejects
        )
        self.checkpoints.save()
        self.events(
            "run_started",
            {
                "files": len(self.writing),
                "resumed_from_run": self.previous.current_run_id,
                "previous_run": self.previous.last_run_id,
            },
        )
        proof_of.report_start(self.proof, {s.url for s in self.writing}, self.events)
        ctx.hooks.on_start(self.doc)
        log.info("apply started", files=len(self.writing), rows=self.plan.totals.rows)

    # --- write ----------------------------------------------------------------------------

    def read_namespace(self) -> NamespaceLive:
        """``router.json`` now, retrying transient store failures (one 503 never ends a run)."""
        ns = self.ctx.spec.target.namespace
        return self.retrier.call(lambda: self.reader.read_namespace(ns), what="router")

    def build_pipeline(self, client: TargetClient) -> Pipeline:
        """The pipeline that carries out the plan's file steps."""
        ctx, spec = self.ctx, self.ctx.spec
        name = spec.target.namespace

        def read_router() -> RouterReading:
            ns = self.read_namespace()
            return RouterReading(ns.wal_highwater, ns.indexed_wal)

        mode = self.plan.indexer["mode"]
        every = self.plan.delivery["sample_every"]
        self.prover = Prover(self.reader, name, every, self.retrier) if every else None
        self.write_proofs = WriteProofs(
            self.prover,
            self.checkpoints.update,
            self.events,
            interval=ctx.options.proof_interval,
        )
        self.compactor = compactor_for(self.plan.indexer, name, client, ctx.stop, self.events)
        self.throttle = Throttle(
            read_router,
            max_wal_lag=spec.throttle.max_wal_lag,
            resume_wal_lag=spec.throttle.resume_wal_lag,
            poll_interval=spec.throttle.poll_interval,
            stall_timeout=spec.throttle.stall_timeout,
            stop=ctx.stop,
            on_event=self.events,
            compact=self.compactor.run if self.compactor is not None else None,
            pause_on_lag=mode != "none",
        )
        self.policy = RejectPolicy(
            spec.ingest.on_invalid_row,
            spec.ingest.max_invalid_rows,
            self.rejects.append,
            sink_name=self.run_files.location("rejects.ndjson"),
        )
        a, src = spec.source.attributes, spec.source
        mapper = RowMapper(
            src.id_field, src.vector_field, a.include, a.rename, spec.target.vector_dims
        )
        on_retry = lambda data: self.events("retry", data)  # noqa: E731
        writer = Writer(client, name, ctx.retry_policy, stop=ctx.stop, on_retry=on_retry)
        throttle = self.throttle
        return Pipeline(
            self.file_runs,
            open_rows=file_rows(
                src.format,
                src.compression,
                dict(reveal(dict(src.storage_options))),
                mapper.columns,
                self.read_urls,
            ),
            mapper=mapper,
            writer=writer,
            throttle=throttle,
            rejects=self.policy,
            chunk_bytes=spec.ingest.chunk_bytes,
            max_request_bytes=spec.target.max_request_bytes,
            concurrency=spec.ingest.concurrency,
            stop=ctx.stop,
            on_event=self.events,
            on_checkpoint=self.write_proofs.checkpoint,
            on_progress=lambda s: ctx.hooks.on_progress(s, throttle),
            on_first_ack=lambda seq: proof_of.store_shows(
                self.read_namespace(), seq, lambda: self.reader.read_wal(name, seq), spec.target
            ),
            drain_timeout=ctx.options.drain_timeout,
        )

    def write(self, client: TargetClient) -> _Written:
        """Carry out the file steps; the checkpoint is saved however the writes end."""
        pipeline = self.build_pipeline(client)
        self.events.augment = lambda: {
            "rows_acked": pipeline.stats.rows_acked,
            "bytes_acked": pipeline.stats.bytes_acked,
        }
        # One report for the run: a pass that re-sends lost rows adds to the first one's.
        self.report = getattr(self, "report", None) or RunReport(
            (self.ctx.spec.summary.path, self.ctx.options.summary_out),
            self.doc,
            self.run_id,
            self.run_files,
            self.started,
            self.events,
            self.policy,
            pipeline.ids,
            WalGauge(self.reader, self.ctx.spec.target.namespace),
            operator_facts(self.ctx.spec.source_path),
        )
        failure: BaseException | None = None
        try:
            self._index_first()
            pipeline.run()
        except BaseException as exc:
            failure = exc
        finally:
            failure = self._checkpoint_writes(pipeline.stats, failure)
        if failure is None:
            self.ctx.heartbeat.check()
        # Decided once: a stop that arrives after the last write goes to the verification,
        # which it interrupts, so the outcome agrees with the event written above.
        written = _Written(pipeline.stats, time.time(), self._wrote_everything)
        if failure is not None:
            self.report.write(
                "failed", written.stats, written.finished_at, [], None, describe(failure)
            )
            raise failure
        return written

    def _index_first(self) -> None:
        """``indexer.mode: command`` with the indexer behind (the precondition let it pass
        for this): index before the first write."""
        limit = self.ctx.spec.preconditions.max_initial_wal_lag
        if self.compactor and self.file_runs and self.read_namespace().wal_lag > limit:
            self.compactor.run("before_writes")

    def _checkpoint_writes(
        self, stats: PipelineStats, failure: BaseException | None
    ) -> BaseException | None:
        self.checkpoints.record_writes(stats)
        self._wrote_everything = failure is None and not self.ctx.stop.is_set()
        self.events(
            "writes_finished" if self._wrote_everything else "writes_stopped",
            {"rows": stats.rows_acked, "bytes": stats.bytes_acked, "requests": stats.requests},
        )
        try:
            self.checkpoints.save()
        except StateError as exc:
            return failure or exc
        return failure

    def stopped(self, written: _Written) -> ApplyOutcome:
        """The writes were interrupted: the checkpoint is saved; the next apply resumes."""
        self.report.write("interrupted", written.stats, written.finished_at, [], None, None)
        location = LedgerStore(self.ctx.backend, self.ctx.spec.name).location
        code, message = interrupted_writes(location)
        return ApplyOutcome(code, self.run_id, self.doc, written.stats, message=message)

    # --- account and deliver --------------------------------------------------------------

    def account(self, written: _Written) -> None:
        """Fail (exit 1) a run that read rows and acknowledged none, before verifying anything.

        The pipeline has checked each file's accounts (rows read = acknowledged + rejected);
        here every row was rejected. The files it read go back to where this run started
        them, so the next apply reads them again instead of taking them for done.
        """
        stats = written.stats
        if not stats.rows_read or stats.rows_acked:
            return
        self.checkpoints.unread(self.file_runs)
        error = nothing_written(stats, self.run_files.location(self.run_files.REJECTS))
        self.report.write("failed", stats, written.finished_at, [], None, error.message)
        raise error

    def deliver(self, client: TargetClient, written: _Written) -> _Written:
        """Prove the acknowledged writes (``live.delivery``); re-send from each file's first lost
        write and prove again, ``DELIVERY_ROUNDS`` times at most, then ``WritesOverwritten``."""
        listed = {s.url for s in self.plan.files if s.action != "gone"}
        for round_ in range(1, DELIVERY_ROUNDS + 1):
            if not self.prove():
                return written  # stopping: the next apply proves these writes first
            files = self.checkpoints.ledger.files
            again = [e for url, e in files.items() if e.status == "partial" and url in listed]
            if not again:
                return written
            if round_ == DELIVERY_ROUNDS:
                error = proof_of.overwritten_error([e.url for e in again], DELIVERY_ROUNDS)
                self.report.write(
                    "failed", written.stats, written.finished_at, [], None, error.message
                )
                raise error
            self.events("resend", {"round": round_, "files": [e.url for e in again]})
            self.file_runs = [resend_run(e) for e in again]
            more = self.write(client)
            more.stats.resent_files = len(again)
            written = _Written(written.stats.plus(more.stats), more.finished_at, more.complete)
            if not more.complete:
                return written
        return written

    def prove(self) -> bool:
        """One delivery proof; lost files go back to partial in the ledger. False: stopping."""
        if self.ctx.stop.is_set():
            return False
        if self.prover is None:
            return True  # verify.delivery: off
        ledger = self.checkpoints.save()
        acks = {url: entry.acks for url, entry in ledger.files.items() if entry.acks}
        try:
            skip = self.read_namespace().indexed_wal if self.ctx.spec.wal_trim.allowed else 0
            proof = self.prover(acks, skip_through=skip)
        except Interrupted:
            return False
        self.checkpoints.replace_entries(proof_of.proven_entries(ledger.files, proof))
        # Lost rows are written again and acknowledged again: not counted twice.
        upserts = max(0, ledger.run.upserts_acked - proof.lost_upserts)
        self.checkpoints.update_run(upserts_acked=upserts)
        self.checkpoints.save()
        proof_of.report(proof, self.events)
        return True

    def index(self, written: _Written) -> None:
        """``indexer.mode: command``: index once after the last write (or before verifying an
        earlier run's); a failure ends the run with its verification pending."""
        self.at_last_ack: NamespaceLive | None = None
        try:
            if written.stats.requests:  # what the "epoch advanced" check compares with
                self.at_last_ack = self.read_namespace()
            if self.compactor is None or not (
                written.stats.requests or self.plan.verification_reason
            ):
                return
            if (self.at_last_ack or self.read_namespace()).wal_lag > 0:
                self.compactor.run("after_writes")
        except Interrupted:
            return  # stopping: the verification sees the stop and the run ends interrupted
        except ElaxError as exc:
            self.report.write("failed", written.stats, written.finished_at, [], None, exc.message)
            raise

    # --- verify ---------------------------------------------------------------------------

    def verify(self, client: TargetClient, stats: PipelineStats) -> list[CheckResult]:
        """The plan's check steps over this run's acknowledged WAL range."""
        if not self.plan.verification_reason:
            return []
        ledger, run = self.checkpoints.ledger, self.checkpoints.ledger.run
        first, last = run.first_acked_wal_sequence, run.last_acked_wal_sequence
        done = [url for url, entry in ledger.files.items() if entry.status == "done"]
        keys = done or sorted(s.url for s in self.writing)
        name = self.ctx.spec.target.namespace
        ctx = VerifyContext(
            client=client,
            namespace=name,
            read_namespace=self.read_namespace,
            sample=sampler(self.ctx.spec, [self.read_urls.get(k, k) for k in keys]),
            last_acked_seq=last,
            wal_range=(first, last) if first is not None and last is not None else None,
            upserts_acked=run.upserts_acked,
            resends=run.resends,
            at_last_ack=None if (a := self.at_last_ack) is None else (a.epoch, a.indexed_wal),
            wal_floor=run.wal_highwater_at_start,
            retrier=self.retrier,
            stop=self.ctx.stop,
            on_event=self.events,
            list_wal=lambda: self.retrier.call(lambda: self.reader.list_wal(name), what="wal"),
            read_wal=lambda seq: self.reader.read_wal(name, seq),
            proven={a.seq: a.proof for e in ledger.files.values() for a in e.acks if a.proof},
            verify_spec=self.ctx.spec.verify,
        )
        results = run_checks(ctx, self.plan.post_steps)
        for r in results:
            self.events("check", {"key": r.key, "passed": r.passed, "detail": r.detail})
        return results

    # --- trim -----------------------------------------------------------------------------

    def trim(self, written: _Written, checks: list[CheckResult]) -> TrimResult | None:
        """The plan's WAL-trim step, if it has one; a failed trim still leaves a summary."""
        step = self.plan.post_step("wal_trim")
        if step is None or not self.ctx.spec.wal_trim.allowed:
            return None  # (a saved plan's step needs the plan file to allow it too)
        try:
            result = trim_step(self.ctx.spec.target, step)
        except ElaxError as exc:
            # Verified data, failed trim: the next plan shows the objects that remain
            # eligible and apply trims them.
            location = self.report.write(
                "failed", written.stats, written.finished_at, checks, None, exc.message
            )
            self._close_run(
                Verification("passed", location, self.ctx.spec.verify.checks_digest()), open_=False
            )
            raise
        self.events("wal_trim", result.to_json())
        return result

    # --- finish ---------------------------------------------------------------------------

    def _close_run(self, verification: Verification, *, open_: bool) -> None:
        # An unfinished verification keeps the run open, so the apply that finishes it
        # checks the same acknowledged WAL range and upsert count.
        self.checkpoints.update_run(
            current_run_id=self.run_id if open_ else None,
            last_run_id=self.run_id,
            finished=time.time(),
            verification=verification,
        )
        self.checkpoints.save()

    def finish(
        self,
        written: _Written,
        checks: list[CheckResult],
        trim: TrimResult | None,
        unfinished: bool,
    ) -> ApplyOutcome:
        """Record the verdict, store the summary, and say how the run ended."""
        passed = overall(checks)
        if self.ctx.stop.is_set():
            outcome = "interrupted"
        else:
            outcome = "succeeded" if passed else "verification_failed"
        location = self.report.write(
            outcome, written.stats, written.finished_at, checks, trim, None
        )
        if unfinished:
            verification = Verification("pending", location)
        elif checks:
            verification = Verification(
                "passed" if passed else "failed", location, self.ctx.spec.verify.checks_digest()
            )
        else:
            # Nothing needed verifying (e.g. a run that only trims the WAL): the last
            # verdict stands; the run's ledger entry was reset to pending when it started.
            verification = self.previous.verification
        self._close_run(verification, open_=unfinished)
        return self._outcome(outcome, written.stats, checks, location)

    def _outcome(
        self, outcome: str, stats: PipelineStats, checks: list[CheckResult], location: str
    ) -> ApplyOutcome:
        files = self.run_files
        at = RunFilesAt(location, files.location(files.REJECTS), files.location(files.DUPLICATES))
        code, message = closing(outcome, stats, checks, self.policy.count, at)
        return ApplyOutcome(code, self.run_id, self.doc, stats, message, self.report.record)


__all__ = ["ApplyHooks", "ApplyOptions", "ApplyOutcome", "ApplyRun", "RunContext", "apply_plan"]
