"""The planner's input: ``LiveState``, everything observed at one moment, and its ledger view.

Pure: frozen dataclasses only, no I/O and no clock. ``live.snapshot.observe``
fills them in; the planner reads them. Owns the narrow view of the ledger the
planner is allowed to see (``LedgerView``/``FileProgress``) — the full ledger
and the namespace record are ``state``'s concepts, and their status words
(``FileStatus``, ``VerificationStatus``) and ``NamespaceRecord`` are used
from there, never redefined here. It must not read or write the state store:
``live`` depends on ``state``'s types, never the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from elax_plan.live.model import LostWrite, NamespaceLive, SourceListing, TargetLive
from elax_plan.spec.workload import LoadedWorkload
from elax_plan.state import FileStatus, NamespaceRecord, VerificationStatus

__all__ = ["FileProgress", "LedgerView", "LiveState"]


@dataclass(frozen=True, slots=True)
class FileProgress:
    """What the ledger says about one source file."""

    fingerprint: str
    status: FileStatus
    resume_from: Mapping[str, Any] | None = None
    rows_written: int = 0
    size: int = 0


@dataclass(frozen=True, slots=True)
class LedgerView:
    """The parts of the state ledger the planner reads."""

    lineage: str
    serial: int
    files: Mapping[str, FileProgress]
    target: Mapping[str, Any] = field(default_factory=dict)  # store, namespace
    verification: VerificationStatus = "none"
    verified_checks: str | None = None  # VerifySpec.checks_digest() behind a passed/failed verdict
    last_run_id: str | None = None
    summary_location: str | None = None
    run_in_progress: bool = False


@dataclass(frozen=True, slots=True)
class LiveState:
    """Everything the readers observed, at ``observed_at`` (Unix seconds)."""

    observed_at: float
    target: TargetLive
    namespace: NamespaceLive
    source: SourceListing
    ledger: LedgerView | None = None
    namespace_record: NamespaceRecord | None = None
    # Acknowledged writes the WAL no longer holds, by source file (``live.delivery``).
    lost_writes: Mapping[str, LostWrite] = field(default_factory=dict)
    # The plan's query workload and expected results, parsed (``live.workload``), if any.
    workload: LoadedWorkload | None = None
