"""``elax-plan status``, ``unlock`` and ``summary``: read (or release) a plan's state."""

from __future__ import annotations

import time

import click

from elax_plan.cli._group import GlobalOptions, main
from elax_plan.cli._output import echo
from elax_plan.cli._plan_args import load_plan_from_cli, plan_argument, var_option
from elax_plan.errors import ElaxError, StateError
from elax_plan.execution_plan import format_bytes, plural


@main.command("status")
@plan_argument
@var_option
@click.pass_obj
def status_command(options: GlobalOptions, plan_file: str, var_items: tuple[str, ...]) -> None:
    """Show the progress of the current or last run from the state ledger.

    Files done / partial / pending, rows and bytes written, the lease holder
    (if an apply is running or died holding it), the last run and its
    verification, and the namespace's current WAL lag.
    """
    from elax_plan.live.store import read_namespace
    from elax_plan.state import CORRUPT_LOCK_ID, open_backend, read_status

    spec = load_plan_from_cli(plan_file, var_items)
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    st = read_status(backend, spec.name, plan_file=plan_file)
    lines = [f'Plan "{spec.name}" — state {st.location}']
    if st.ledger is None:
        lines.append("  no ledger yet: this plan has never been applied")
    else:
        run = st.ledger.run
        lines.append(
            f"  files: {st.files_done} done, {st.files_partial} partial, "
            f"{st.files_pending} pending; {plural(st.rows, 'row')}, "
            f"{format_bytes(st.bytes)} written (ledger serial {st.ledger.serial})"
        )
        if run.current_run_id:
            lines.append(f"  run {run.current_run_id} in progress or interrupted (resumable)")
        if st.last_run_id:
            lines.append(
                f"  last run: {st.last_run_id}; verification {run.verification.status}"
                + (f" (summary {run.verification.summary})" if run.verification.summary else "")
            )
    if st.lease_corrupt is not None:
        lines.append(
            f"  lease: lock.json is corrupt ({st.lease_corrupt.reason}); if no apply is running,"
            f" remove it with `elax-plan unlock {plan_file} {CORRUPT_LOCK_ID}`"
        )
    elif st.lease is None:
        lines.append("  lease: free")
    else:
        state = (
            "expired"
            if st.lease_expired
            else ("holder process is gone" if st.lease_holder_gone else "held")
        )
        # describe() names the lock id: `unlock` needs it, once.
        lines.append(f"  lease: {state} — {st.lease.describe(time.time())}")
    try:
        ns = read_namespace(spec.target.store, spec.target.storage_options, spec.target.namespace)
        lines.append(
            f"  namespace {ns.name}: WAL lag {ns.wal_lag} (wal_highwater {ns.wal_highwater}, "
            f"indexed_wal {ns.indexed_wal})"
            if ns.exists
            else f"  namespace {ns.name}: not written yet"
        )
    except ElaxError as exc:
        lines.append(f"  namespace: cannot read router.json ({exc.summary})")
    echo("\n".join(lines))


@main.command("unlock")
@plan_argument
@click.argument("lock_id")
@var_option
@click.pass_obj
def unlock_command(
    options: GlobalOptions, plan_file: str, lock_id: str, var_items: tuple[str, ...]
) -> None:
    """Force-release a lease left by a dead apply (like `terraform force-unlock`).

    LOCK_ID must be the lease's lock id (shown by `elax-plan status` and in the
    error of a refused apply); a wrong id is refused. Only do this when the
    holder is really gone: its writes are otherwise no longer fenced. A
    lock.json that is no lease (status says it is corrupt) has no lock id:
    LOCK_ID `corrupt` removes it, and only it.
    """
    from elax_plan.state import force_unlock, open_backend

    spec = load_plan_from_cli(plan_file, var_items)
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    info = force_unlock(backend, spec.name, lock_id, plan_file=plan_file)
    if info is None:
        echo(
            f"Removed the corrupt lease of plan '{spec.name}'; `elax-plan apply` can lock it again."
        )
        return
    echo(
        f"Released the lease {info.lock_id} on plan '{spec.name}' "
        f"(was held by {info.holder.describe()} for {info.operation})."
    )


@main.command("summary")
@plan_argument
@click.option("--run", "run_id", help="A run id (default: the last run).")
@var_option
@click.pass_obj
def summary_command(
    options: GlobalOptions, plan_file: str, run_id: str | None, var_items: tuple[str, ...]
) -> None:
    """Print the markdown summary of the last (or given) run again."""
    from elax_plan.report.run_record import render_summary
    from elax_plan.state import RunFiles, list_runs, open_backend, read_status

    spec = load_plan_from_cli(plan_file, var_items)
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    # The ledger names the last run (written under the lease), so this is the run `status`
    # reports even when clocks of different hosts disagree about the run ids' order.
    chosen = run_id or read_status(backend, spec.name).last_run_id
    if chosen is None:
        raise StateError(
            f"Plan '{spec.name}' has no runs yet.",
            hint="Run `elax-plan apply` first.",
        )
    files = RunFiles(backend, spec.name, chosen)
    record = files.read_summary_record()
    if record is None:
        known = list_runs(backend, spec.name)
        raise StateError(
            f"Run {chosen} of plan '{spec.name}' has no summary.",
            f"Known runs: {', '.join(known[-5:]) or 'none'}.",
            "Pick one with --run RUN_ID.",
        )
    echo(render_summary(record), nl=False)
