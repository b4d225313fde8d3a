"""The file steps of a plan: each source file against the ledger (``+ ~ > = -``), with its
estimated rows, request bytes and requests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elax_plan.execution_plan import (
    FileStep,
    plural,
)
from elax_plan.live.model import (
    SourceFile,
    SourceListing,
    same_source,
)
from elax_plan.live.state_view import LedgerView, LiveState
from elax_plan.spec import PlanSpec, display_url

# --- estimates -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Estimate:
    rows: int
    bytes: int


def _estimate(spec: PlanSpec, listing: SourceListing, f: SourceFile, fraction: float) -> _Estimate:
    sample = listing.sample
    per_row = sample.source_bytes_per_row
    if f.rows is not None:
        rows = f.rows
        req_per_row = sample.request_bytes / sample.sampled_rows if sample.sampled_rows else 0.0
        req = rows * req_per_row
    else:
        rows = round(f.size / per_row) if per_row else 0
        ratio = sample.request_bytes_per_source_byte
        req = f.size * ratio if ratio is not None else float(f.size)
    return _Estimate(rows=round(rows * fraction), bytes=round(req * fraction))


def _remaining_fraction(f: SourceFile, resume_from: Mapping[str, Any] | None) -> float:
    """The share of a partly written file still to send, from its resume point."""
    if not resume_from:
        return 1.0
    if f.rows and "row" in resume_from:
        return max(0.0, 1.0 - int(resume_from["row"]) / f.rows)
    # NDJSON: the byte offset of the next line (decompressed bytes for compressed files,
    # so the estimate is rough there).
    offset = resume_from.get("offset")
    if isinstance(offset, int) and f.size:
        return max(0.0, 1.0 - offset / f.size)
    return 1.0


def _requests(request_bytes: int, chunk_bytes: int) -> int:
    return math.ceil(request_bytes / chunk_bytes) if request_bytes > 0 else 0


def total_requests(request_bytes: list[int], chunk_bytes: int) -> int:
    """Requests for files written in this order: the last, partial chunks of consecutive files
    share requests up to ``chunk_bytes`` (as apply packs them); a file with a full chunk sends
    the shared one first."""
    total = waiting = 0
    for size in request_bytes:
        full, rest = divmod(size, chunk_bytes)
        if full and waiting:
            total, waiting = total + 1, 0
        total += full
        if rest:
            if waiting + rest > chunk_bytes:
                total, waiting = total + 1, 0
            waiting += rest
    return total + (1 if waiting else 0)


# --- file steps ----------------------------------------------------------------------------


def same_target(spec: PlanSpec, ledger: LedgerView) -> bool:
    t = ledger.target
    # The ledger keeps the store as displayed (credentials as ***): compare like with like.
    return not t or (
        t.get("store") == display_url(spec.target.store)
        and t.get("namespace") == spec.target.namespace
    )


def file_steps(spec: PlanSpec, live: LiveState) -> list[FileStep]:
    ledger = live.ledger
    known = ledger.files if ledger is not None and same_target(spec, ledger) else {}
    steps: list[FileStep] = []
    chunk = spec.ingest.chunk_bytes
    for f in live.source.files:
        progress = known.get(f.url)
        lost = live.lost_writes.get(f.url) if known else None
        if progress is None or progress.status == "pending":
            action, reason, resume = "create", "new", None
        elif not same_source(progress.fingerprint, f.fingerprint):
            action = "update"
            reason = f"changed since it was written ({progress.fingerprint} → {f.fingerprint})"
            resume = None
        elif lost is not None:
            # Acknowledged rows the WAL lost: written again from the first lost write.
            action, resume = "resume", _earlier(lost.start, progress.resume_from)
            reason = f"acknowledged rows lost on the server: {lost.reason}; re-sent from there"
        elif progress.status == "done":
            steps.append(
                FileStep(f.url, "skip", f.size, f.fingerprint, progress.fingerprint, reason="done")
            )
            continue
        else:
            action, resume = "resume", progress.resume_from
            reason = f"partly written: {plural(progress.rows_written, 'row')} done"
        est = _estimate(spec, live.source, f, _remaining_fraction(f, resume))
        steps.append(
            FileStep(
                url=f.url,
                action=action,  # type: ignore[arg-type]
                size=f.size,
                fingerprint=f.fingerprint,
                previous_fingerprint=progress.fingerprint if progress else None,
                resume_from=resume,
                est_rows=est.rows,
                est_bytes=est.bytes,
                est_requests=_requests(est.bytes, chunk),
                reason=reason,
            )
        )
    listed = {f.url for f in live.source.files}
    for url in sorted(set(known) - listed):
        progress = known[url]
        steps.append(
            FileStep(
                url,
                "gone",
                progress.size,
                None,
                progress.fingerprint,
                reason="gone from the source; nothing is deleted from the namespace",
            )
        )
    return steps


def _earlier(lost: Mapping[str, Any], resume: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The earlier of two resume points (a lost write's start, the ledger's resume point)."""
    if not resume:
        return lost

    def position(point: Mapping[str, Any]) -> tuple[int, int, int]:
        return (int(point.get("offset", 0)), int(point.get("line", 0)), int(point.get("row", 0)))

    return lost if position(lost) <= position(resume) else resume
