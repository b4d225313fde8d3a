"""``read_status``: what ``elax-plan status`` shows from state, gathered in one read-only call.

Owns assembling the ledger, the plan's lease, its namespace's lease and the last run into one
plain value. It must not write anything, contact the target (the CLI adds the live WAL lag)
or format text for people (the CLI renders the value).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from elax_plan.errors import LeaseCorrupt
from elax_plan.state.backend import StateBackend
from elax_plan.state.holder import holder_is_gone
from elax_plan.state.layout import Clock, ledger_key
from elax_plan.state.lease import read_lease
from elax_plan.state.lease_info import LeaseInfo, LeaseKey
from elax_plan.state.ledger import Ledger, read_ledger
from elax_plan.state.records import last_run_id


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """One lease at one moment: free (``info`` None), held, expired, orphaned or corrupt."""

    key: LeaseKey
    location: str
    info: LeaseInfo | None
    corrupt: LeaseCorrupt | None  # the lock file is there but is no lease
    expired: bool
    holder_gone: bool


@dataclass(frozen=True, slots=True)
class StateStatus:
    """A plan's state at one moment: progress from the ledger, and who holds its leases."""

    plan: str
    location: str
    ledger: Ledger | None
    lease: LeaseStatus
    namespace_lease: LeaseStatus | None  # None when no namespace was asked about
    last_run_id: str | None
    files_done: int
    files_partial: int
    files_pending: int
    rows: int
    bytes: int


def read_lease_status(
    backend: StateBackend,
    key: LeaseKey,
    *,
    clock: Clock = time.time,
    plan_file: str | None = None,
) -> LeaseStatus:
    """The lease on ``key`` now, judged as ``acquire`` would judge it."""
    corrupt: LeaseCorrupt | None = None
    try:
        info = read_lease(backend, key, plan_file=plan_file)
    except LeaseCorrupt as exc:
        info, corrupt = None, exc
    return LeaseStatus(
        key=key,
        location=backend.location(key.path),
        info=info,
        corrupt=corrupt,
        expired=info is not None and info.expired(clock()),
        holder_gone=info is not None and holder_is_gone(info.holder),
    )


def read_status(
    backend: StateBackend,
    plan_name: str,
    *,
    namespace: str | None = None,
    clock: Clock = time.time,
    plan_file: str | None = None,
) -> StateStatus:
    """The plan's status from state alone; safe to call while an apply is running.

    ``namespace`` (the plan's target namespace) adds who holds its namespace lease;
    ``plan_file`` only makes a corrupt lease's message name the exact unlock command."""
    ledger = read_ledger(backend, plan_name)
    lease = read_lease_status(backend, LeaseKey.plan(plan_name), clock=clock, plan_file=plan_file)
    namespace_lease = (
        read_lease_status(backend, LeaseKey.namespace(namespace), clock=clock, plan_file=plan_file)
        if namespace is not None
        else None
    )
    run_id = (ledger.run.current_run_id or ledger.run.last_run_id) if ledger else None
    files = list(ledger.files.values()) if ledger else []
    return StateStatus(
        plan=plan_name,
        location=backend.location(ledger_key(plan_name)),
        ledger=ledger,
        lease=lease,
        namespace_lease=namespace_lease,
        last_run_id=run_id or last_run_id(backend, plan_name),
        files_done=sum(1 for f in files if f.status == "done"),
        files_partial=sum(1 for f in files if f.status == "partial"),
        files_pending=sum(1 for f in files if f.status == "pending"),
        rows=sum(f.rows for f in files),
        bytes=sum(f.bytes for f in files),
    )
