"""``elax-plan status``, ``unlock`` and ``summary``: read (or release) a plan's state."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from elax_plan.cli._group import GlobalOptions, main
from elax_plan.cli._output import echo
from elax_plan.cli._plan_args import load_plan_from_cli, plan_argument, var_option
from elax_plan.errors import ElaxError, StateError
from elax_plan.execution_plan import format_bytes, plural

if TYPE_CHECKING:
    from elax_plan.state import LeaseStatus


@main.command("status")
@plan_argument
@var_option
@click.pass_obj
def status_command(options: GlobalOptions, plan_file: str, var_items: tuple[str, ...]) -> None:
    """Show the progress of the current or last run from the state ledger.

    Files done / partial / pending, rows and bytes written, the lease holder
    (if an apply is running or died holding it), the namespace lease (which
    plan writes into target.namespace now, if any), the last run and its
    verification, and the namespace's current WAL lag.
    """
    from elax_plan.live.store import read_namespace
    from elax_plan.state import open_backend, read_status

    spec = load_plan_from_cli(plan_file, var_items)
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    st = read_status(backend, spec.name, namespace=spec.target.namespace, plan_file=plan_file)
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
    lines.append(_lease_line("lease", st.lease, plan_file))
    if st.namespace_lease is not None:
        lines.append(_lease_line("namespace lease", st.namespace_lease, plan_file))
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


def _lease_line(label: str, lease: LeaseStatus, plan_file: str) -> str:
    """One lease for `status`: free, corrupt (with the unlock that clears it) or held."""
    from elax_plan.state import CORRUPT_LOCK_ID

    if lease.corrupt is not None:
        unlock = lease.key.unlock_command(plan_file, CORRUPT_LOCK_ID)
        return (
            f"  {label}: {lease.key.file_name} is corrupt ({lease.corrupt.reason}); if no apply"
            f" is running, remove it with `{unlock}`"
        )
    if lease.info is None:
        return f"  {label}: free"
    state = (
        "expired" if lease.expired else ("holder process is gone" if lease.holder_gone else "held")
    )
    # describe() names the lock id: `unlock` needs it, once.
    return f"  {label}: {state} — {lease.info.describe(time.time())}"


@main.command("unlock")
@plan_argument
@click.argument("lock_id")
@click.option(
    "--namespace",
    "namespace_lease",
    is_flag=True,
    help="Release the lease on the plan's target.namespace (namespaces/<ns>.lock under"
    " state.uri), which may be held for another plan, instead of the plan's own lease.",
)
@var_option
@click.pass_obj
def unlock_command(
    options: GlobalOptions,
    plan_file: str,
    lock_id: str,
    namespace_lease: bool,
    var_items: tuple[str, ...],
) -> None:
    """Force-release a lease left by a dead apply (like `terraform force-unlock`).

    LOCK_ID must be the lease's lock id (shown by `elax-plan status` and in the
    error of a refused apply); a wrong id is refused. Only do this when the
    holder is really gone: its writes are otherwise no longer fenced. A lock
    file that is no lease (status says it is corrupt) has no lock id: LOCK_ID
    `corrupt` removes it, and only it.

    Without --namespace this is the plan's own lease (<plan>/lock.json). With
    --namespace it is the lease on the namespace the plan writes into
    (namespaces/<ns>.lock): the one writer allowed there now, whichever plan it
    writes for. Breaking it while that run lives lets two plans write one
    namespace at once, which loses writes on a real node (hazard H1).
    """
    from elax_plan.state import LeaseKey, force_unlock, open_backend

    spec = load_plan_from_cli(plan_file, var_items)
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    key = LeaseKey.namespace(spec.target.namespace) if namespace_lease else LeaseKey.plan(spec.name)
    info = force_unlock(backend, key, lock_id, plan_file=plan_file)
    if info is None:
        echo(f"Removed the corrupt lease of {key}; `elax-plan apply` can lock it again.")
        return
    held_for = f" for plan '{info.plan}'" if namespace_lease else ""
    echo(
        f"Released the lease {info.lock_id} on {key} "
        f"(was held{held_for} by {info.holder.describe()} for {info.operation})."
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
