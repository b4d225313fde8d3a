"""One read of everything a plan depends on: target, store, source, the plan's own state, and
its query workload.

Read-only. Owns the order of the readings and their conversion into the
planner's ``LiveState`` (``live.state_view``, including the narrow
``LedgerView`` of the ledger), and the one clock reading a plan is computed at.
It reads the state store only through ``state``'s public readers and changes
nothing anywhere: no write to the target, the store, the source or the state.

Source files are keyed by their display URL
-------------------------------------------

A source file's URL may carry a credential (``…/c1.ndjson?sig=…``, a presigned
``X-Amz-Signature``, ``user:pass@``). The planner, the execution plan (shown and
saved), the ledger (``state.json``), events and rejects all name a file by its
*key*: ``display_url(url)``, the URL with those parts as ``***``
(``https://h/c1.ndjson?sig=***``). ``keyed_listing`` turns the reader's
listing into that view and keeps the real URL beside each key
(``SourceFile.read_url``), which only apply uses, to open the file
(``SourceListing.read_urls``, from its own fresh listing, also for a saved plan).
So the ledger written by one run and the listing of the next are compared
key to key, both redacted the same way, and a refreshed signature does not make
a file look new: the fingerprint (size, ETag/mtime) says whether it changed.
Two URLs differing only in their credentials are the same file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from elax_plan.live.delivery import DeliveryProof, prove_delivery, sample_every
from elax_plan.live.model import NamespaceLive, SourceFile, SourceListing
from elax_plan.live.source import read_source
from elax_plan.live.state_view import FileProgress, LedgerView, LiveState
from elax_plan.live.store import StoreReader
from elax_plan.live.target import check_target
from elax_plan.live.workload import read_workload
from elax_plan.retry import Retrier
from elax_plan.spec import PlanSpec, display_url
from elax_plan.state import (
    Ledger,
    NamespaceRecord,
    RunFiles,
    StateBackend,
    TargetIdentity,
    read_ledger,
    read_namespace_record,
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The planner's input plus the full ledger and record it was made from."""

    live: LiveState
    ledger: Ledger | None
    record: NamespaceRecord | None
    proof: DeliveryProof | None = None  # of the ledger's acknowledged writes


def keyed_listing(listing: SourceListing) -> SourceListing:
    """``listing`` with each file keyed by its display URL, the real one kept as ``read_url``."""
    files: dict[str, SourceFile] = {}
    for f in listing.files:
        key = display_url(f.url)
        files.setdefault(key, f if key == f.url else replace(f, url=key, read_url=f.url))
    return replace(listing, files=tuple(files[key] for key in sorted(files)))


def ledger_view(ledger: Ledger, backend: StateBackend | None = None) -> LedgerView:
    """The parts of a ledger the planner reads."""
    run = ledger.run
    summary = run.verification.summary
    if summary is None and backend is not None and run.last_run_id:
        summary = RunFiles(backend, ledger.plan, run.last_run_id).location("summary.md")
    return LedgerView(
        lineage=ledger.lineage,
        serial=ledger.serial,
        files={
            url: FileProgress(
                fingerprint=e.fingerprint,
                status=e.status,
                resume_from=dict(e.resume) if e.resume else None,
                rows_written=e.rows,
                size=e.size,
            )
            for url, e in ledger.files.items()
        },
        target={"store": ledger.target.store, "namespace": ledger.target.namespace},
        verification=run.verification.status,
        verified_checks=run.verification.checks,
        last_run_id=run.last_run_id or run.current_run_id,
        summary_location=summary,
        run_in_progress=run.current_run_id is not None,
    )


def observe(
    spec: PlanSpec,
    backend: StateBackend,
    *,
    clock: Callable[[], float] = time.time,
    retrier: Retrier | None = None,
) -> Snapshot:
    """Read target, namespace, source and state for ``spec``; raise ``ElaxError`` on failure.

    With a ``retrier`` (apply's), a transient store failure reading the router is retried."""
    observed_at = clock()
    workload = read_workload(spec)  # first: a bad line is the user's to fix before anything
    ledger = read_ledger(backend, spec.name)
    record = read_namespace_record(backend, spec.target.namespace)
    target = check_target(spec.target)
    reader = StoreReader(spec.target.store, spec.target.storage_options)

    def read_namespace() -> NamespaceLive:
        return reader.read_namespace(spec.target.namespace, with_wal=spec.wal_trim.allowed)

    namespace = retrier.call(read_namespace, what="router") if retrier else read_namespace()
    proof = None
    every = sample_every(spec.verify.delivery)
    if every is not None and ledger is not None and _same_target(spec, ledger):
        acks = {url: entry.acks for url, entry in ledger.files.items() if entry.acks}
        # A WAL trimmed on purpose (only objects at or below indexed_wal) is not a loss.
        skip = namespace.indexed_wal if spec.wal_trim.allowed else 0
        proof = prove_delivery(
            reader,
            spec.target.namespace,
            acks,
            skip_through=skip,
            sample_every=every,
            retrier=retrier,
        )
    listing = keyed_listing(read_source(spec.source, exclude=state_locations(spec)))
    live = LiveState(
        observed_at=observed_at,
        target=target,
        namespace=namespace,
        source=listing,
        ledger=ledger_view(ledger, backend) if ledger is not None else None,
        namespace_record=record,
        lost_writes=dict(proof.lost) if proof is not None else {},
        workload=workload,
    )
    return Snapshot(live, ledger, record, proof)


def state_locations(spec: PlanSpec) -> tuple[str, str]:
    """Where this plan's state lives under ``state.uri``: its own folder (ledger, lease, runs)
    and the namespace records. A source pattern that covers them must leave them out."""
    root = spec.state.uri.rstrip("/")
    return (f"{root}/{spec.name}/", f"{root}/namespaces/")


def _same_target(spec: PlanSpec, ledger: Ledger) -> bool:
    """Whether the ledger's writes went to this plan's store and namespace."""
    here = TargetIdentity.of(spec.target.url, spec.target.store, spec.target.namespace)
    return (ledger.target.store, ledger.target.namespace) == (here.store, here.namespace)
