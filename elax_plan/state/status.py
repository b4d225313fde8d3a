"""``read_status``: what ``elax-plan status`` shows from state, gathered in one read-only call.

Owns assembling the ledger, the lease and the last run into one plain value.
It must not write anything, contact the target (the CLI adds the live WAL lag)
or format text for people (the CLI renders the value).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from elax_plan.errors import LeaseCorrupt
from elax_plan.state.backend import StateBackend
from elax_plan.state.holder import holder_is_gone
from elax_plan.state.layout import Clock, ledger_key
from elax_plan.state.lease import LeaseInfo, read_lease
from elax_plan.state.ledger import Ledger, read_ledger
from elax_plan.state.records import last_run_id


@dataclass(frozen=True, slots=True)
class StateStatus:
    """A plan's state at one moment: progress from the ledger, and who holds the lease."""

    plan: str
    location: str
    ledger: Ledger | None
    lease: LeaseInfo | None
    lease_corrupt: LeaseCorrupt | None  # lock.json is there but is no lease
    lease_expired: bool
    lease_holder_gone: bool
    last_run_id: str | None
    files_done: int
    files_partial: int
    files_pending: int
    rows: int
    bytes: int


def read_status(
    backend: StateBackend,
    plan_name: str,
    *,
    clock: Clock = time.time,
    plan_file: str | None = None,
) -> StateStatus:
    """The plan's status from state alone; safe to call while an apply is running.

    ``plan_file`` only makes a corrupt lease's message name the exact unlock command."""
    ledger = read_ledger(backend, plan_name)
    corrupt: LeaseCorrupt | None = None
    try:
        lease = read_lease(backend, plan_name, plan_file=plan_file)
    except LeaseCorrupt as exc:
        lease, corrupt = None, exc
    run_id = (ledger.run.current_run_id or ledger.run.last_run_id) if ledger else None
    files = list(ledger.files.values()) if ledger else []
    return StateStatus(
        plan=plan_name,
        location=backend.location(ledger_key(plan_name)),
        ledger=ledger,
        lease=lease,
        lease_corrupt=corrupt,
        lease_expired=lease is not None and lease.expired(clock()),
        lease_holder_gone=lease is not None and holder_is_gone(lease.holder),
        last_run_id=run_id or last_run_id(backend, plan_name),
        files_done=sum(1 for f in files if f.status == "done"),
        files_partial=sum(1 for f in files if f.status == "partial"),
        files_pending=sum(1 for f in files if f.status == "pending"),
        rows=sum(f.rows for f in files),
        bytes=sum(f.bytes for f in files),
    )
