"""``elax-plan apply``: plan, confirm, write with checkpoints, verify, summarise."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import click

from elax_plan.cli._group import GlobalOptions, main
from elax_plan.cli._output import echo
from elax_plan.cli._plan_args import load_plan_from_cli, var_option
from elax_plan.cli.emulator import Duration
from elax_plan.errors import EXIT_INTERRUPTED, ElaxError, PlanFileError
from elax_plan.execution_plan import ExecutionPlan, load_document
from elax_plan.spec.secrets import redact

if TYPE_CHECKING:
    from elax_plan.apply.progress import ProgressReporter
    from elax_plan.apply.run import ApplyHooks
    from elax_plan.spec import PlanSpec
    from elax_plan.state import LeaseInfo


def read_saved_plan(path: str) -> ExecutionPlan | None:
    """The saved plan in ``path``, or None when the file is not one (a YAML plan).

    A file that starts like JSON is a saved plan: it must parse, match the execution-plan
    schema and its checksum, or the error says where it is wrong."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip()
    except OSError:
        return None  # the plan loader reports a missing or unreadable file
    if not head.startswith(b"{"):
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PlanFileError(f"Cannot read the saved plan {path}: {exc.strerror or exc}.") from exc
    return load_document(data, path)


STOP_GRACE_S = 3.0
"""After the first Ctrl-C, how long a run that does not stop may take before the CLI exits
anyway (its main thread waits for a request that hangs: reading the target, a smoke query)."""


def _say(text: str) -> None:
    """Write to stderr from a signal handler or a timer: no buffered stream (a handler can
    interrupt the main thread in the middle of writing to one)."""
    with contextlib.suppress(OSError):
        os.write(2, redact(text).encode())


def _exit_now(code: int) -> NoReturn:
    """End the process without joining threads still waiting for abandoned requests."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            stream.flush()
    os._exit(code)


class _Signals:
    """SIGINT/SIGTERM during an apply.

    The first sets ``stop``: writes stop, requests in flight get a second to be answered
    and are then abandoned (they are sent again on resume), the checkpoint is saved, the
    lease released, exit 130. If the run has not stopped ``STOP_GRACE_S`` later (its main
    thread waits for a request that hangs), or on a second signal, the process exits 130 at
    once, saying what state is left (``left()``).
    """

    def __init__(self, stop: threading.Event, left: Callable[[], str]) -> None:
        self.stop = stop
        self.left = left
        self.previous: dict[int, Any] = {}
        self.timer: threading.Timer | None = None
        self.signals = 0  # not stop.is_set(): a lost lease sets stop too

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals > 1:
            self._give_up("Interrupted again: exiting now, without waiting for the run to stop.")
        self.stop.set()
        _say(
            "\nStopping: no new writes; requests in flight are abandoned after a second (they"
            " are sent again on resume); saving the checkpoint and releasing the leases… Press"
            " Ctrl-C again to exit at once.\n"
        )
        self.timer = threading.Timer(
            STOP_GRACE_S,
            self._give_up,
            (
                f"The run did not stop within {STOP_GRACE_S:g}s: it waits for a request that hangs."
                " Exiting now.",
            ),
        )
        self.timer.daemon = True
        self.timer.start()

    def _give_up(self, why: str) -> NoReturn:
        _say(f"{why} {self.left()}\n")
        _exit_now(EXIT_INTERRUPTED)

    def __exit__(self, *_: object) -> None:
        if self.timer is not None:
            self.timer.cancel()
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class _Console:
    """The terminal's part in an apply: show the plan, ask for "yes", draw the progress."""

    def __init__(
        self,
        options: GlobalOptions,
        *,
        auto_approve: bool,
        no_progress: bool,
        lock_timeout: float = 0.0,
    ) -> None:
        self.options = options
        self.auto_approve = auto_approve
        self.lock_timeout = lock_timeout
        self.waited_for: set[str] = set()  # lock ids whose holder was named
        self.live_bar = not no_progress and sys.stderr.isatty() and not options.quiet
        self.reporter: ProgressReporter | None = None
        self.shown = False  # the plan, with its closing line, is on the screen
        self.started = False  # the run opened the ledger: it may have written

    def hooks(self) -> ApplyHooks:
        from elax_plan.apply.run import ApplyHooks

        return ApplyHooks(
            on_lock_wait=self.on_lock_wait,
            show_plan=self.show_plan,
            confirm=self.confirm,
            on_start=self.on_start,
            on_progress=self.on_progress,
            on_event=self.on_event,
        )

    def on_lock_wait(self, info: LeaseInfo) -> None:
        """Say once (per lease) on stderr whose lease --lock-timeout waits for."""
        from elax_plan.spec.units import format_duration

        if info.lock_id in self.waited_for or self.options.quiet:
            return
        self.waited_for.add(info.lock_id)
        h = info.holder
        # A namespace lease is held for another plan: name the namespace and that plan first.
        what = (
            f"namespace '{info.namespace}', written by plan '{info.plan}' —"
            if info.namespace is not None
            else "the lease"
        )
        echo(
            f"Waiting up to {format_duration(self.lock_timeout)} for {what} held by user "
            f"{h.user} on host {h.host}, pid {h.pid} (lock id {info.lock_id}, "
            f"{info.operation}, since {info.since})…",
            err=True,
        )

    def show_plan(self, doc: dict[str, Any]) -> None:
        from elax_plan.cli.plan import use_colour
        from elax_plan.report.plan_render import render_text

        if not self.options.quiet:
            echo(render_text(doc, colour=use_colour(self.options)), nl=False)
            self.shown = True

    def confirm(self, doc: dict[str, Any]) -> bool:
        if self.auto_approve:
            return True
        answer = click.prompt(
            "\nDo you want to apply this plan? Only 'yes' will be accepted",
            default="",
            show_default=False,
        )
        return bool(answer.strip() == "yes")

    def on_start(self, doc: dict[str, Any]) -> None:
        from elax_plan.apply.progress import ProgressReporter

        self.started = True
        totals = doc["totals"]
        self.reporter = ProgressReporter(self.live_bar, totals["rows"], totals["bytes"])

    def on_progress(self, stats: Any, throttle: Any) -> None:
        if self.reporter is not None:
            self.reporter(stats, throttle)

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if self.reporter is not None:
            self.reporter.on_event(kind, data)

    def close(self) -> None:
        if self.reporter is not None:
            self.reporter.close()


@main.command("apply")
@click.argument("plan_files", nargs=-1, metavar="[PLAN]...")
@var_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--no-progress", is_flag=True, help="Log progress lines instead of a live bar.")
@click.option(
    "--summary-out",
    type=click.Path(dir_okay=False),
    help="Also write the run's markdown summary here (besides summary.path and the state).",
)
@click.option(
    "--lock-timeout",
    type=Duration(),
    default="0s",
    show_default=True,
    help="Wait this long for another apply's lease before giving up: the plan's own, and"
    " the namespace's (one plan at a time writes into a namespace), together.",
)
@click.option(
    "--queue",
    "queue_dir",
    type=click.Path(file_okay=False),
    help="Take the plans in DIR (every *.yaml with `version: 1`) one after another, skipping"
    " any whose lease another worker holds, until none is left: N workers share DIR safely.",
)
@click.pass_obj
def apply_command(
    options: GlobalOptions,
    plan_files: tuple[str, ...],
    var_items: tuple[str, ...],
    auto_approve: bool,
    no_progress: bool,
    summary_out: str | None,
    lock_timeout: float,
    queue_dir: str | None,
) -> int:
    """Apply plans: write each source into its namespace, then verify.

    PLAN is a plan file, a saved plan, a directory (its *.yaml with `version:
    1`) or a glob; several are applied one after another — a failed plan does
    not stop the next, the exit code says the worst (1 error, 3 verification
    failed), and Ctrl-C stops them all. With --queue DIR, N workers (e.g. the
    pods of a Kubernetes Job) share the plans in DIR: each takes them one after
    another and skips, without waiting, a plan whose lease another worker
    holds; it stops when every plan left is held by another.

    One plan, in detail:

    PLAN.yaml is planned afresh and shown; on a terminal you confirm with
    "yes", elsewhere --auto-approve is required. A saved plan (from
    `elax-plan plan --out FILE`) is applied exactly, without a prompt, and
    refused when anything it was computed from has changed. An interrupted
    or failed run resumes from its checkpoint when apply runs again.
    Apply holds two leases for the whole run: the plan's, and its
    namespace's (namespaces/<ns>.lock under state.uri), so that two plans
    sharing a state.uri never write one namespace at once; the second waits
    up to --lock-timeout or exits 1 naming the plan and run that holds it.
    Ctrl-C / SIGTERM stop within seconds (exit 130): requests in flight are
    abandoned (sent again on resume), the checkpoint is saved and the leases
    released. A second Ctrl-C exits at once and says what state is left.
    """
    from elax_plan.cli._plan_set import resolve_plan_args
    from elax_plan.cli.apply_many import apply_many, apply_queue

    def one(plan: Path, *, wait: float = lock_timeout) -> int:
        return _apply_one(
            options, str(plan), var_items, auto_approve, no_progress, summary_out, wait
        )

    if queue_dir is not None:
        if plan_files or summary_out:
            raise PlanFileError(
                "--queue takes its plans from DIR: give no PLAN and no --summary-out with it.",
                hint="Each plan's summary is kept with its run (and at its summary.path).",
            )
        _need_approval(auto_approve)
        return apply_queue(Path(queue_dir), lambda p: one(p, wait=0.0), quiet=options.quiet)
    plans = resolve_plan_args(plan_files)
    if len(plans) == 1:
        return _apply_one(
            options,
            plan_files[0] if len(plan_files) == 1 else str(plans[0]),
            var_items,
            auto_approve,
            no_progress,
            summary_out,
            lock_timeout,
        )
    if summary_out:
        raise PlanFileError(
            "--summary-out names one file: give one plan with it.",
            hint="Each plan's summary is kept with its run (and at its summary.path).",
        )
    return apply_many(plans, one, quiet=options.quiet)


def _need_approval(auto_approve: bool) -> None:
    if not auto_approve:
        raise ElaxError(
            "Refusing to apply a queue without --auto-approve: nobody is there to confirm.",
            hint="Review the plans with `elax-plan plan DIR`, then run with --auto-approve.",
        )


def _apply_one(
    options: GlobalOptions,
    plan_file: str,
    var_items: tuple[str, ...],
    auto_approve: bool,
    no_progress: bool,
    summary_out: str | None,
    lock_timeout: float,
) -> int:
    """One plan, as `elax-plan apply PLAN` runs it: the exit code (errors raise)."""
    from elax_plan.apply.run import ApplyOptions, apply_plan

    saved = read_saved_plan(plan_file)
    if saved is not None:
        spec = load_plan_from_cli(saved.plan["file"], var_items)
    else:
        spec = load_plan_from_cli(plan_file, var_items)
        if not auto_approve and not sys.stdin.isatty():
            raise ElaxError(
                "Refusing to apply without confirmation: standard input is not a terminal.",
                hint="Review `elax-plan plan` and re-run with --auto-approve, or apply a saved "
                "plan (`elax-plan plan --out FILE`, then `elax-plan apply FILE`).",
            )
    console = _Console(
        options, auto_approve=auto_approve, no_progress=no_progress, lock_timeout=lock_timeout
    )
    stop = threading.Event()
    left = _state_left(spec, plan_file, console)
    try:
        with _Signals(stop, left):
            outcome = apply_plan(
                spec,
                saved=saved,
                hooks=console.hooks(),
                options=ApplyOptions(
                    lock_timeout=lock_timeout,
                    summary_out=Path(summary_out) if summary_out else None,
                ),
                stop=stop,
                plan_file=plan_file,
            )
    finally:
        console.close()
    if outcome.record is not None and not options.quiet:
        from elax_plan.report.run_record import render_summary

        echo("")
        echo(render_summary(outcome.record), nl=False)
    # A plan without changes already said so in its closing line ("No changes. …").
    said = console.shown and outcome.run_id is None and not outcome.plan["totals"]["changes"]
    if outcome.message and not said and not (options.quiet and outcome.exit_code == 0):
        echo(outcome.message, err=outcome.exit_code == EXIT_INTERRUPTED)
    if stop.is_set() and _abandoned_requests():
        # Their threads wait for answers that may take target.timeout: do not join them.
        _exit_now(outcome.exit_code)
    return outcome.exit_code


def _abandoned_requests() -> bool:
    """Whether a thread besides this one is still alive that the interpreter would join at exit
    (a writer waiting for a request the stopped run abandoned)."""
    me = threading.current_thread()
    return any(t is not me and not t.daemon and t.is_alive() for t in threading.enumerate())


def _state_left(spec: PlanSpec, plan_file: str, console: _Console) -> Callable[[], str]:
    """What an early exit leaves behind, said when it happens (it depends on how far the run
    got): computed without I/O, since a signal handler or a timer says it."""
    from elax_plan.state import DEFAULT_TTL, LeaseKey, LedgerStore, lease_location, open_backend

    backend = open_backend(spec.state.uri, spec.state.storage_options)
    lock = lease_location(backend, spec.name)
    namespace_lock = lease_location(backend, LeaseKey.namespace(spec.target.namespace))
    ledger = LedgerStore(backend, spec.name).location
    lease = (
        f"The leases may be left in {lock} and {namespace_lock}: the next `elax-plan apply` on"
        f" this host takes them over at once (their holder is gone); on another host it waits"
        f" until they expire, {DEFAULT_TTL:g}s after their last renewal."
    )

    def left() -> str:
        if not console.started:
            return f"Nothing was written in this run. {lease} Run `elax-plan apply {plan_file}`."
        return (
            f"The ledger {ledger} keeps the checkpoint saved last: every write acknowledged"
            " before it stays done, and rows acknowledged after it are sent again on resume"
            f" (upserts are idempotent). {lease} Run `elax-plan apply {plan_file}` again to"
            " resume."
        )

    return left
