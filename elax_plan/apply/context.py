"""What one apply is given and gives back: hooks, options, run context and outcome.

``ApplyHooks`` (how the CLI shows the plan, asks, and draws progress),
``ApplyOptions`` (flags such as ``--lock-timeout``), ``RunContext`` (what every
phase of ``ApplyRun`` shares) and ``ApplyOutcome`` (exit code, run id, message).
Data only; ``apply.run`` does the work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elax_plan.apply.pipeline import PipelineStats
from elax_plan.apply.throttle import Throttle
from elax_plan.apply.write_proofs import PROOF_INTERVAL
from elax_plan.retry import RetryPolicy
from elax_plan.spec import PlanSpec
from elax_plan.state import (
    Heartbeat,
    Lease,
    LeaseInfo,
    StateBackend,
)


@dataclass
class ApplyHooks:
    """How the CLI takes part: show the plan, confirm, report progress and events."""

    # Called on each poll while --lock-timeout waits for another run's lease.
    on_lock_wait: Callable[[LeaseInfo], None] = lambda _: None
    show_plan: Callable[[dict[str, Any]], None] = lambda _: None
    confirm: Callable[[dict[str, Any]], bool] | None = None  # None: approved
    on_start: Callable[[dict[str, Any]], None] = lambda _: None
    on_progress: Callable[[PipelineStats, Throttle], None] = lambda *_: None
    on_event: Callable[[str, dict[str, Any]], None] = lambda *_: None


@dataclass
class ApplyOptions:
    lock_timeout: float = 0.0
    summary_out: Path | None = None
    emulator_options: Mapping[str, Any] = field(default_factory=dict)
    lease_ttl: float = 60.0
    lease_renew: float = 10.0
    drain_timeout: float = 10.0
    proof_interval: float = PROOF_INTERVAL  # seconds between delivery proofs during writes


@dataclass
class ApplyOutcome:
    """What happened: the exit code, the run id and numbers for the final message."""

    exit_code: int
    run_id: str | None
    plan: dict[str, Any]
    stats: PipelineStats | None = None
    message: str = ""
    record: dict[str, Any] | None = None


@dataclass
class RunContext:
    """What every phase of one run shares; fixed before the first phase starts."""

    spec: PlanSpec
    backend: StateBackend
    lease: Lease
    heartbeat: Heartbeat
    hooks: ApplyHooks
    options: ApplyOptions
    stop: threading.Event

    @property
    def emulator_options(self) -> dict[str, Any]:
        """The embedded emulator's options: a plan that asserts its node recovers from its
        parts (so it may trim the WAL) gets an emulator that does."""
        options = dict(self.options.emulator_options)
        if self.spec.wal_trim.node_recovers_from_parts:
            options["recover_from_parts"] = True
        return options

    @property
    def retry_policy(self) -> RetryPolicy:
        r = self.spec.ingest.retry
        return RetryPolicy(r.attempts, r.initial, r.max)
