"""Who advances ``indexed_wal`` in this plan, as the plan shows it and apply carries it out.

The real elacsym has no indexer daemon (CONTRACT §5): ``indexed_wal`` moves only when
``elax-cli compact`` runs. ``indexer.mode`` says who runs it — elax-plan itself
(``command``), something else (``external``) or nobody (``none``) — and this module
turns that into the document's ``indexer`` section: the argv apply will run (with
``{namespace}`` substituted, secrets hidden), its timeout and one sentence for reviewers.
"""

from __future__ import annotations

import shlex
from typing import Any

from elax_plan.spec import PlanSpec, format_duration, redact


def indexer_facts(spec: PlanSpec) -> dict[str, Any]:
    """The ``indexer`` section of the execution plan."""
    indexer = spec.indexer
    argv = indexer.argv(spec.target.namespace)
    lag = spec.throttle.max_wal_lag
    if indexer.mode == "command":
        what = (
            f"elax-plan runs `{redact(shlex.join(argv))}` (timeout "
            f"{format_duration(indexer.timeout)})"
            if argv is not None
            else "the embedded emulator compacts in-process"
        )
        detail = (
            f"{what} when the WAL lag reaches {lag} and once after the last write, "
            "never while a write is in flight"
        )
    elif indexer.mode == "external":
        detail = (
            "something else indexes (an indexer fleet or a scheduled `elax-cli compact`): "
            f"elax-plan pauses writes while the WAL lag is above {lag} and waits for it"
        )
    else:
        detail = (
            "nobody indexes during this run: writes are not paused on WAL lag, and "
            "verification neither waits for the index nor checks parts"
        )
    return {
        "mode": indexer.mode,
        "command": [redact(a) for a in argv] if argv is not None else None,
        "timeout_s": indexer.timeout,
        "detail": detail,
    }
