"""State of a plan over fsspec (``file://``, ``memory://``, ``s3://``): ledger, lease, records.

The narrow public surface of ``elax_plan.state``: code outside the package
imports from here (``__all__``), never from its submodules, which are private. Layout under ``<state.uri>`` (SPEC §6)::

    <plan>/state.json            ledger     ledger.LedgerStore / LedgerWriter
    <plan>/lock.json             lease      lease.acquire / force_unlock; heartbeat, holder
    <plan>/runs/<run_id>/...     run files  records.RunFiles
    namespaces/<ns>.json         record     records.record_namespace_use
    namespaces/<ns>.lock         lease      acquire(..., key=LeaseKey.namespace(ns)): the
                                            plan writing into <ns> now (lease_info.LeaseKey)

Every write of ledger, lease and namespace record is a compare-and-swap
(``backend``), and every ledger write is fenced by the lease (``ledger``).
This package does I/O on the state store only; it never prints.

Typical use by ``apply``::

    backend = open_backend(spec.state.uri, spec.state.storage_options)
    lease = acquire(backend, spec.name, "apply", wait=lock_timeout, plan_file=path)
    with Heartbeat(lease, on_lost=...) as heartbeat:
        ns_lease = acquire(backend, spec.name, "apply", key=LeaseKey.namespace(ns), ...)
        heartbeat.add(ns_lease)
        writer = LedgerStore(backend, spec.name).claim(lease)
        ledger = writer.ledger or Ledger.new(...)
        ledger = writer.save(ledger.with_file(...))
        heartbeat.check()
        ns_lease.release()
    lease.release()

and by the CLI: ``read_status(backend, name, namespace=ns)`` for ``status``,
``force_unlock(backend, name or LeaseKey.namespace(ns), lock_id, plan_file=path)`` for
``unlock``.
"""

from elax_plan.errors import Conflict, LeaseHeld, LeaseLost
from elax_plan.state.backend import StateBackend, Versioned, open_backend
from elax_plan.state.heartbeat import Heartbeat
from elax_plan.state.holder import Holder, holder_is_gone
from elax_plan.state.lease import (
    DEFAULT_RENEW_INTERVAL,
    DEFAULT_TTL,
    Lease,
    acquire,
    force_unlock,
    lease_location,
    read_lease,
)
from elax_plan.state.lease_info import CORRUPT_LOCK_ID, LeaseInfo, LeaseKey
from elax_plan.state.ledger import (
    STATE_VERSION,
    Ack,
    FileEntry,
    FileStatus,
    Ledger,
    LedgerStore,
    LedgerWriter,
    RunState,
    TargetIdentity,
    Verification,
    VerificationStatus,
    migrate,
    read_ledger,
)
from elax_plan.state.records import (
    NamespaceRecord,
    RunFiles,
    last_run_id,
    list_runs,
    new_run_id,
    read_namespace_record,
    record_namespace_use,
)
from elax_plan.state.status import LeaseStatus, StateStatus, read_status

__all__ = [
    "CORRUPT_LOCK_ID",
    "DEFAULT_RENEW_INTERVAL",
    "DEFAULT_TTL",
    "STATE_VERSION",
    "Ack",
    "Conflict",
    "FileEntry",
    "FileStatus",
    "Heartbeat",
    "Holder",
    "Lease",
    "LeaseHeld",
    "LeaseInfo",
    "LeaseKey",
    "LeaseLost",
    "LeaseStatus",
    "Ledger",
    "LedgerStore",
    "LedgerWriter",
    "NamespaceRecord",
    "RunFiles",
    "RunState",
    "StateBackend",
    "StateStatus",
    "TargetIdentity",
    "Verification",
    "VerificationStatus",
    "Versioned",
    "acquire",
    "force_unlock",
    "holder_is_gone",
    "last_run_id",
    "lease_location",
    "list_runs",
    "migrate",
    "new_run_id",
    "open_backend",
    "read_lease",
    "read_ledger",
    "read_namespace_record",
    "read_status",
    "record_namespace_use",
]
