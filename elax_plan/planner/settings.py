"""What a reviewer approves besides the steps: the settings the run will use, and how long
its writes should take.

Owns the execution plan's ``settings`` section — chunking, concurrency, the bad-row
policy and the throttle, as apply will use them — and its write-time estimate. The
estimate is the planned bytes at ``ASSUMED_RATE`` per connection: an assumption, said so
in the plan, because no reading of the target tells how fast it takes writes; throttle
pauses, indexing and verification come on top of it.
"""

from __future__ import annotations

from typing import Any

from elax_plan.execution_plan import PlanTotals
from elax_plan.spec import PlanSpec

ASSUMED_RATE = 8 * 1024 * 1024
"""Bytes per second one connection is assumed to write (see the module docstring)."""


def settings_facts(spec: PlanSpec, totals: PlanTotals) -> dict[str, Any]:
    """The ``settings`` section of the execution plan."""
    ingest, throttle = spec.ingest, spec.throttle
    rate = ASSUMED_RATE * ingest.concurrency
    return {
        "chunk_bytes": ingest.chunk_bytes,
        "max_request_bytes": spec.target.max_request_bytes,
        "concurrency": ingest.concurrency,
        "on_invalid_row": ingest.on_invalid_row,
        "max_invalid_rows": ingest.max_invalid_rows,
        "max_wal_lag": throttle.max_wal_lag,
        "resume_wal_lag": throttle.resume_wal_lag,
        "poll_interval_s": throttle.poll_interval,
        "stall_timeout_s": throttle.stall_timeout,
        "estimated_write_s": round(totals.bytes / rate, 1) if totals.files_to_write else 0.0,
        "assumed_bytes_per_s": rate,
    }
