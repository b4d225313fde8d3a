"""``apply`` over several plans, and ``apply --queue DIR``: the order, the skips, the exit code.

Owns running one plan after another and combining what they ended with; the run of one
plan is the caller's (``run_one``, which prints that plan's summary as a single apply
does). A plan that fails does not stop the ones after it — its error is said at once and
the combined exit code carries it — but an interrupt (Ctrl-C, SIGTERM) stops them all.

The queue is for N identical workers sharing a directory of plans (a Kubernetes Job of
parallelism N, say): each takes the plans one after another with ``--lock-timeout 0``,
and a plan whose lease (the plan's, or its namespace's) another worker holds is skipped,
not waited for. After each plan the directory is read again (plans added meanwhile are
taken too; a plan another worker finished meanwhile plans as "No changes" and writes
nothing). A worker stops when every plan left is one another worker holds: that worker
reads the directory again when its plan ends, so no plan is left behind while any worker
runs. The leases in ``state.uri`` are what make this safe — one writer per plan, one
writer per namespace — not the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from elax_plan.cli._output import echo
from elax_plan.cli._plan_set import plans_in
from elax_plan.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_VERIFY_FAILED,
    ElaxError,
    LeaseHeld,
    PlanFileError,
    exit_code_for,
)

log = structlog.get_logger("elax_plan.cli")

RunOne = Callable[[Path], int]


def combined_exit(codes: Sequence[int]) -> int:
    """One exit code for several plans: 130 if interrupted, else 1 if any failed, else 3 if
    any verification failed, else 0."""
    for code in (EXIT_INTERRUPTED, EXIT_ERROR, EXIT_VERIFY_FAILED):
        if code in codes:
            return code
    return max(codes, default=EXIT_OK)


def _attempt(plan: Path, run_one: RunOne) -> int:
    """``run_one(plan)``; an error is said (as the CLI says one) and becomes its exit code."""
    try:
        return run_one(plan)
    except LeaseHeld:
        raise
    except ElaxError as exc:
        echo(f"Error: {plan}: {exc.message}", err=True)
        return exit_code_for(exc)


def apply_many(plans: Sequence[Path], run_one: RunOne, *, quiet: bool) -> int:
    """Apply ``plans`` one after another (see the module docstring)."""
    codes: list[int] = []
    for i, plan in enumerate(plans, 1):
        if not quiet:
            echo(f"\n=== Plan {i} of {len(plans)}: {plan} ===\n")
        try:
            code = _attempt(plan, run_one)
        except LeaseHeld as exc:
            echo(f"Error: {plan}: {exc.message}", err=True)
            code = exit_code_for(exc)
        codes.append(code)
        if code == EXIT_INTERRUPTED:
            break
    if not quiet:
        echo(_closing(plans[: len(codes)], codes, len(plans)))
    return combined_exit(codes)


def _closing(plans: Sequence[Path], codes: Sequence[int], total: int) -> str:
    ok = sum(1 for c in codes if c == EXIT_OK)
    failed = [str(p) for p, c in zip(plans, codes, strict=True) if c != EXIT_OK]
    text = f"\n{ok} of {total} plans applied"
    if failed:
        text += f"; failed or failed verification: {', '.join(failed)}"
    if len(codes) < total:
        text += f"; {total - len(codes)} not started (interrupted)"
    return text + "."


def apply_queue(folder: Path, run_one: RunOne, *, quiet: bool) -> int:
    """Take the plans in ``folder`` one after another, skipping held ones (module docstring)."""
    if not folder.is_dir():
        raise PlanFileError(
            f"--queue {folder} is not a directory.",
            hint="Name the directory that holds the plans (every *.yaml with `version: 1`).",
        )
    finished: set[Path] = set()
    codes: list[int] = []
    while True:
        ran = False
        for plan in plans_in(folder):
            if plan.resolve() in finished:
                continue
            try:
                code = _attempt(plan, run_one)
            except LeaseHeld as exc:
                log.info("skipped: another worker holds its lease", plan=str(plan), why=exc.message)
                continue
            finished.add(plan.resolve())
            codes.append(code)
            if code == EXIT_INTERRUPTED:
                return EXIT_INTERRUPTED
            ran = True
            break  # read the directory again: one plan after another
        if not ran:
            break  # nothing left but plans other workers hold
    if not quiet:
        echo(f"\nQueue {folder}: {len(codes)} plan(s) run by this worker.")
    return combined_exit(codes)
