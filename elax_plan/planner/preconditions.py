"""The checks apply requires before writing, each judged on a live value: target reachable,
indexer caught up, metric and dims against the namespace record, store budget.
"""

from __future__ import annotations

from elax_plan.execution_plan import (
    Check,
    FileStep,
    format_bytes,
    format_count,
)
from elax_plan.live.model import (
    Capabilities,
    NamespaceLive,
    TargetLive,
)
from elax_plan.live.state_view import LiveState
from elax_plan.spec import PlanSpec
from elax_plan.spec.workload import LoadedWorkload
from elax_plan.state import NamespaceRecord

# Parts store vectors as float32 plus ids and attribute JSON; this is the estimate's overhead
# per row on top of 4 bytes per dimension.
PART_ROW_OVERHEAD = 64


def preconditions(
    spec: PlanSpec, live: LiveState, files: list[FileStep], resuming: bool
) -> list[Check]:
    """The checks apply requires before writing, in a fixed order; each judged on live values."""
    writes = any(s.writes for s in files)
    checks = [
        _reachable_check(live.target),
        _indexer_check(spec, live.namespace, writes, resuming),
        _metric_check(spec, live.namespace_record, live.namespace),
    ]
    dims = _dims_check(spec, live.namespace_record)
    if dims is not None:
        checks.append(dims)
    server = live.target.capabilities
    appends = _appends_check(spec, server, writes)
    if appends is not None:
        checks.append(appends)
    bm25 = _bm25_check(spec, server, live.workload)
    if bm25 is not None:
        checks.append(bm25)
    budget = _store_budget_check(spec, files)
    if budget is not None:
        checks.append(budget)
    return checks


def _reachable_check(target: TargetLive) -> Check:
    return Check(
        "target_reachable",
        "elacsym target reachable",
        target.reachable,
        "reachable" if target.reachable else "unreachable",
        "reachable",
        target.detail,
    )


def _indexer_check(spec: PlanSpec, ns: NamespaceLive, writes: bool, resuming: bool) -> Check:
    """The indexer's lag is judged only for a fresh start that writes and waits for it."""
    lag, limit = ns.wal_lag, spec.preconditions.max_initial_wal_lag
    mode = spec.indexer.mode
    if mode == "none":
        ok, detail = True, "not checked: indexer.mode is none"
    elif resuming:
        ok, detail = True, "resuming an interrupted run: the throttle waits for the indexer"
    elif not writes:
        ok, detail = True, "nothing to write"
    elif lag > limit and mode == "command":
        ok, detail = True, "apply runs the indexer command before its first write"
    else:
        ok = lag <= limit
        detail = (
            ""
            if ok
            else "the indexer is behind; wait for it to catch up (is an indexer or "
            "`elax-cli compact` running?) before starting a backfill, or set "
            "indexer.mode: command so that elax-plan runs the compaction itself"
        )
    return Check(
        "indexer_caught_up",
        "indexer caught up (wal_highwater − indexed_wal)",
        ok,
        f"{format_count(lag)} (wal_highwater {ns.wal_highwater}, indexed_wal {ns.indexed_wal})",
        f"≤ {limit}",
        detail,
    )


def _metric_check(
    spec: PlanSpec, record: NamespaceRecord | None, namespace: NamespaceLive
) -> Check:
    """The plan's metric against the namespace record. A namespace without a record passes
    only when it holds no writes yet, or the plan asserts what its writes used."""
    metric = spec.target.distance_metric
    title = "distance metric matches the namespace"
    if record is None and namespace.wal_highwater == 0:
        return Check(
            "metric",
            title,
            True,
            "no record yet",
            metric,
            "this plan's metric and dims will be recorded for the namespace",
        )
    if record is None:
        assumed = spec.target.assume_existing_metric
        if assumed is None:
            return Check(
                "metric",
                title,
                False,
                f"unknown: the namespace holds writes (wal_highwater {namespace.wal_highwater}) "
                "but this state has no record of their metric",
                metric,
                "another state location or another tool wrote them, and mixing metrics "
                "across parts is unsupported; if you know their metric, set "
                "target.assume_existing_metric to it",
            )
        ok = assumed == metric
        return Check(
            "metric",
            title,
            ok,
            f"{assumed} (target.assume_existing_metric; no record)",
            metric,
            "this plan's metric and dims will be recorded for the namespace"
            if ok
            else f"the plan says the namespace was written with {assumed}; mixing metrics "
            "across parts is unsupported — write to another namespace or fix distance_metric",
        )
    ok = record.metric == metric
    return Check(
        "metric",
        title,
        ok,
        record.metric,
        metric,
        ""
        if ok
        else f"the namespace was written with {record.metric}; mixing metrics across "
        "parts is unsupported — write to another namespace or fix distance_metric",
    )


def _dims_check(spec: PlanSpec, record: NamespaceRecord | None) -> Check | None:
    """The plan's vector dims against the record's; none when either side is unknown."""
    dims = spec.target.vector_dims
    if record is None or dims is None or record.vector_dims is None:
        return None
    ok = dims == record.vector_dims
    return Check(
        "vector_dims",
        "vector dims match the namespace",
        ok,
        str(record.vector_dims),
        str(dims),
        "" if ok else "the namespace holds vectors of other dims; fix vector_dims",
    )


def _appends_check(spec: PlanSpec, server: Capabilities, writes: bool) -> Check | None:
    """``ingest.concurrency`` above 1 only where appends are serialised (hazard H1)."""
    n = spec.ingest.concurrency
    if n <= 1 or not writes:
        return None
    asserted = spec.target.serialises_appends
    ok = asserted or server.serialises_appends
    return Check(
        "appends_serialised",
        f"the node serialises appends (ingest.concurrency {n})",
        ok,
        "target.serialises_appends: true"
        if asserted
        else f"looks like {server.family} ({server.detail})",
        "serialised (c152c2d, or asserted)",
        ""
        if ok
        else "elacsym 72e6998 and ac782e1 append without a lock: two overlapping writes can "
        "share a wal_sequence and one is lost, or a WAL file is torn (hazard H1). Set "
        "ingest.concurrency: 1, or target.serialises_appends: true if this node serialises "
        "appends",
    )


def _bm25_check(
    spec: PlanSpec, server: Capabilities, loaded: LoadedWorkload | None
) -> Check | None:
    """BM25 queries need ``rank_by``, which 72e6998 does not have: the smoke queries', and
    those of the workload sample the comparison runs (``verify.compare``)."""
    v = spec.verify
    bm25 = [q.name for q in v.smoke_queries if q.kind == "bm25"]
    if v.compare is not None and loaded is not None:
        sample = loaded.workload.sample(v.workload_sample, v.workload_seed)
        bm25 += [q.name for q in sample if q.bm25 is not None]
    if not bm25 or server.rank_by is not False:
        return None
    return Check(
        "bm25_supported",
        "the target accepts BM25 queries (rank_by)",
        False,
        f"no rank_by: looks like {server.family} ({server.detail})",
        "rank_by accepted",
        f"elacsym {server.family} has no rank_by, so the BM25 "
        + ("query " if len(bm25) == 1 else "queries ")
        + ", ".join(f"'{n}'" for n in bm25)
        + " would be 422 there; remove "
        + ("it" if len(bm25) == 1 else "them")
        + " or upgrade the node",
    )


def _store_budget_check(spec: PlanSpec, files: list[FileStep]) -> Check | None:
    """Projected store growth against ``preconditions.store_budget``, when one is set."""
    budget = spec.preconditions.store_budget
    if budget is None:
        return None
    projected = _projected_store_bytes(spec, files)
    ok = projected <= budget
    return Check(
        "store_budget",
        "projected store growth fits the budget",
        ok,
        format_bytes(projected),
        f"≤ {format_bytes(budget)}",
        "WAL ≈ request bytes, plus parts ≈ float32 vectors and attributes"
        + ("" if ok else "; raise preconditions.store_budget or free space first"),
    )


def _projected_store_bytes(spec: PlanSpec, files: list[FileStep]) -> int:
    wal = sum(s.est_bytes for s in files if s.writes)
    rows = sum(s.est_rows for s in files if s.writes)
    dims = spec.target.vector_dims
    parts = rows * (4 * dims + PART_ROW_OVERHEAD) if dims else wal // 2
    return wal + parts
