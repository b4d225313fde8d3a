"""``elax-plan wal restore``: put back the WAL objects an earlier trim archived."""

from __future__ import annotations

import time

import click

from elax_plan.cli._group import GlobalOptions, main
from elax_plan.cli._output import echo
from elax_plan.cli._plan_args import load_plan_from_cli, plan_argument, var_option
from elax_plan.cli.emulator import Duration
from elax_plan.errors import EXIT_OK


@main.group("wal")
def wal_group() -> None:
    """The namespace's WAL under target.store (`wal restore`)."""


@wal_group.command("restore")
@plan_argument
@var_option
@click.option("--dry-run", is_flag=True, help="Say what would be moved back, and change nothing.")
@click.option(
    "--lock-timeout",
    type=Duration(),
    default="0s",
    show_default=True,
    help="Wait this long for an apply's leases (the plan's, the namespace's) before giving up.",
)
@click.pass_obj
def restore_command(
    options: GlobalOptions,
    plan_file: str,
    var_items: tuple[str, ...],
    dry_run: bool,
    lock_timeout: float,
) -> int:
    """Move archived WAL objects back into the namespace's WAL, byte for byte.

    Every released elacsym node rebuilds a namespace from its WAL alone when
    it restarts, so the objects an earlier `wal_trim` (mode: archive) moved to
    namespaces/<ns>/wal-archive/ under target.store are documents the node
    loses at its next restart. This moves each of them back to
    namespaces/<ns>/wal/. It never replaces a WAL object: one with the same
    bytes is already restored (its archived copy is removed), a different one
    refuses the whole restore, naming it, before anything moves (exit 1).
    Running it again does nothing. It holds the plan's lease and the
    namespace's, so it cannot run beside an apply of this plan or of another
    plan on the namespace. Restart the node(s) afterwards: a node reads the WAL
    when it loads a namespace.

    The plan must validate: a plan that still has wal_trim enabled without
    node_recovers_from_parts is refused, so remove its wal_trim section first.
    """
    from elax_plan.apply.wal_restore import restore_wal
    from elax_plan.state import LeaseInfo

    spec = load_plan_from_cli(plan_file, var_items)

    said: set[str] = set()

    def waiting(info: LeaseInfo) -> None:
        if info.lock_id not in said and not options.quiet:
            said.add(info.lock_id)
            echo(f"Waiting for a lease: {info.describe(time.time())}…", err=True)

    plan = restore_wal(
        spec,
        dry_run=dry_run,
        lock_timeout=lock_timeout,
        plan_file=plan_file,
        on_lock_wait=waiting,
    )
    ns = spec.target.namespace
    lines: list[str] = []
    if plan.empty:
        lines.append(
            f"Nothing to restore: namespaces/{ns}/wal-archive/ holds no archived WAL objects."
        )
    elif dry_run:
        lines.append(f"Would restore {plan.describe()}. Nothing was changed (--dry-run).")
    else:
        lines.append(f"Restored {plan.describe()}.")
        if plan.restored:
            lines.append(
                f"Restart the elacsym node(s) serving namespace '{ns}': a node replays the WAL "
                "when it loads a namespace, so a running one serves these documents again "
                "only after that."
            )
    if plan.ignored:
        lines.append(
            f"Left in namespaces/{ns}/wal-archive/: {', '.join(plan.ignored)} (not WAL objects; "
            "wal/ may hold only WAL-<n>.json files, or the node cannot load the namespace)."
        )
    echo("\n".join(lines))
    return EXIT_OK
