"""The invalid-row policy (``ingest.on_invalid_row`` / ``ingest.max_invalid_rows``).

Owns what happens to an ``InvalidRow``: with ``fail`` the run stops with an ``InvalidRowError``
naming ``FILE:LINE`` (or ``FILE: row N``), the reason and the next step; with ``skip`` the row is
written as one NDJSON line ``{"file","line"|"row","reason","excerpt"}`` through a sink and
counted, and the run stops once the count passes ``max_invalid_rows``. Nothing is dropped
silently: a row is either written by the caller, or handed here.

Must not: open files (the caller connects the sink to ``runs/<run_id>/rejects.ndjson``) or keep
rows (excerpts are already short).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import orjson

from elax_plan.apply.rows import InvalidRow
from elax_plan.errors import InvalidRowError

Sink = Callable[[bytes], None]
"""Receives one reject record: a JSON object and a newline."""

_SKIP_HINT = (
    "Fix the row in the source, or set ingest.on_invalid_row: skip to write invalid rows to "
    "the run's rejects.ndjson and go on."
)


class RejectPolicy:
    """Applies ``on_invalid_row`` to each invalid row; ``count`` is the rows skipped so far."""

    def __init__(
        self,
        mode: Literal["fail", "skip"],
        max_invalid_rows: int = 0,
        sink: Sink | None = None,
        *,
        sink_name: str = "the run's rejects.ndjson",
    ) -> None:
        if mode not in ("fail", "skip"):
            raise ValueError(f"mode must be 'fail' or 'skip', got {mode!r}")
        if mode == "skip" and sink is None:
            raise ValueError("mode 'skip' needs a sink for the reject records")
        if max_invalid_rows < 0:
            raise ValueError(f"max_invalid_rows must be >= 0, got {max_invalid_rows}")
        self.mode = mode
        self.max_invalid_rows = max_invalid_rows
        self.sink = sink
        self.sink_name = sink_name
        self.count = 0

    def reject(self, row: InvalidRow) -> None:
        """Stop the run (``fail``, or over the limit) or record and count the row (``skip``)."""
        if self.mode == "fail" or self.sink is None:
            raise InvalidRowError(
                f"{row.location}: {row.reason}.",
                f"Row: {row.raw_excerpt}" if row.raw_excerpt else None,
                _SKIP_HINT,
                location=str(row.location),
                reason=row.reason,
            )
        self.sink(record(row))
        self.count += 1
        if self.count > self.max_invalid_rows:
            raise InvalidRowError(
                f"{row.location}: {row.reason}.",
                f"That is invalid row {self.count:,}, more than ingest.max_invalid_rows "
                f"({self.max_invalid_rows:,}); every skipped row is listed in {self.sink_name}.",
                "Fix those rows in the source, or raise ingest.max_invalid_rows; "
                "running apply again resumes where this run stopped.",
                location=str(row.location),
                reason=row.reason,
            )


def record(row: InvalidRow) -> bytes:
    """The reject record of ``row``: ``{"file","line"|"row","reason","excerpt"}`` and a newline."""
    out = row.location.to_dict()
    out["reason"] = row.reason
    out["excerpt"] = row.raw_excerpt
    return orjson.dumps(out, option=orjson.OPT_APPEND_NEWLINE)
