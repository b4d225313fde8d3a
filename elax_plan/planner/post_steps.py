"""The steps after the writes, each carrying every parameter its executor needs: wait for
the index, parts and epoch, smoke queries, recall, the comparison with a baseline
(``check_steps``; the comparison's own in ``compare_step``), and the WAL trim.

Query checks carry ``verify.timeout`` as their per-request timeout, the recall gate also
``target.max_request_bytes`` (its sample is split into calls under it), and the first query
check the warm-up query that runs before it (``warm_up``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from elax_plan.execution_plan import (
    PostStep,
    format_bytes,
    format_count,
    plural,
)
from elax_plan.live.model import (
    eligible_wal_objects,
)
from elax_plan.live.state_view import LiveState
from elax_plan.planner.compare_step import compare_step, workload_params
from elax_plan.spec import FilterSpec, PlanSpec, RecallSpec, SmokeQuery, format_duration
from elax_plan.spec.workload import LoadedWorkload


def verification_reason(spec: PlanSpec, live: LiveState, writes: bool) -> str:
    if writes:
        return "data will be written in this run"
    ledger = live.ledger
    if ledger is None or not ledger.files:
        return ""
    if ledger.verification in ("pending", "none"):
        return "the last run stopped before its verification finished"
    if ledger.verified_checks is not None and ledger.verified_checks != (
        spec.verify.checks_digest()
    ):
        return "the smoke queries, the recall gate or the comparison changed since the last verification"
    return ""


def smoke_seed(spec: PlanSpec, name: str) -> int:
    """The seed of a smoke query's sampled rows: the recall seed, offset by the name."""
    seed = spec.verify.recall.seed if spec.verify.recall is not None else 0
    return seed + sum(name.encode())


def check_steps(spec: PlanSpec, workload: LoadedWorkload | None = None) -> list[PostStep]:
    """The verification steps of ``spec``, each with every parameter its executor needs;
    ``workload``: the plan's query workload as ``live.workload`` read it (if it has one)."""
    v = spec.verify
    indexed = spec.indexer.mode != "none"  # with nobody indexing, parts never add up
    steps = [_wait_step(spec)] if v.wait_for_index and indexed else []
    if indexed:
        steps.append(
            PostStep(
                "verify_parts",
                "verify_parts",
                "Verify parts and epoch",
                "Σ rows of the parts covering the acknowledged WAL range ≥ upserts "
                "acknowledged; router epoch advanced",
            )
        )
    steps.append(
        PostStep(
            "wal_replayable",
            "wal_replayable",
            "WAL replayable",
            "every WAL object from this plan's first acknowledged write on is a readable "
            "batch: a node replays the whole WAL when it loads the namespace after a restart",
        )
    )
    queries = [_smoke_step(spec, q) for q in v.smoke_queries]
    if v.recall is not None:
        queries.append(_recall_step(spec, v.recall, workload))
    warm = _warm_up(spec)
    if queries and warm is not None:
        first = queries[0]
        queries[0] = replace(
            first,
            detail=f"{first.detail}; after one warm-up vector query (timeout "
            f"{format_duration(spec.verify.timeout)}) that absorbs the IVF rebuild: not "
            "gating, a timeout is reported",
            params={**first.params, "warm_up": warm},
        )
    compared = compare_step(spec, workload)
    return steps + queries + ([compared] if compared is not None else [])


def _warm_up(spec: PlanSpec) -> dict[str, Any] | None:
    """The warm-up query's parameters, or None when no check queries vectors.

    Its vector is the first of a sample a check draws anyway (the recall gate's, else the
    first sampled smoke query's), so the warm-up reads no more of the source; its ann_params
    and metric are those of the recall gate (else the first vector smoke query), so the
    index it builds is the one that gate measures (the node rebuilds on other bit settings).
    """
    v = spec.verify
    vector_queries = [q for q in v.smoke_queries if q.kind != "bm25"]
    if spec.source.vector_field is None or (v.recall is None and not vector_queries):
        return None
    sampled = next((q for q in v.smoke_queries if q.kind == "sample_vectors"), None)
    if v.recall is not None:
        num, seed = v.recall.num, v.recall.seed
    elif sampled is not None:
        num, seed = sampled.sample_vectors or 1, smoke_seed(spec, sampled.name)
    else:
        num, seed = 1, smoke_seed(spec, "warm-up")
    ann = v.recall.ann_params if v.recall is not None else vector_queries[0].ann_params
    return {
        "num": num,
        "seed": seed,
        "metric": spec.target.distance_metric,
        "ann_params": dict(ann.params),
        "timeout_s": v.timeout,
    }


def _wait_step(spec: PlanSpec) -> PostStep:
    timeout = spec.verify.index_timeout
    return PostStep(
        "wait_for_index",
        "wait_for_index",
        "Wait for the index",
        "until indexed_wal ≥ the last acknowledged wal_sequence "
        f"(timeout {format_duration(timeout)})",
        params={"timeout_s": timeout, "poll_interval_s": spec.throttle.poll_interval},
    )


def _smoke_step(spec: PlanSpec, q: SmokeQuery) -> PostStep:
    if q.kind == "sample_vectors":
        n = q.sample_vectors or 0
        what = (
            f"{plural(n, 'sampled source row')} "
            + ("finds its" if n == 1 else "each find their")
            + f" own id in top {q.top_k}"
        )
    elif q.kind == "bm25" and q.bm25 is not None:
        what = (
            f'BM25 "{q.bm25.text}" on {q.bm25.field}: ≥ {plural(q.min_hits, "hit")} '
            f"in top {q.top_k}"
        )
    else:
        what = f"vector query: ≥ {plural(q.min_hits, 'hit')} in top {q.top_k}"
    if q.expect_ids:
        ids = ", ".join(q.expect_ids)
        what += f", expecting {'id' if len(q.expect_ids) == 1 else 'ids'} {ids}"
    if q.filters is not None:
        what += f", filter {filter_text(q.filters)}"
    return PostStep(
        "smoke_query",
        f"smoke:{q.name}",
        f"Smoke query: {q.name}",
        what,
        params={
            "name": q.name,
            "metric": spec.target.distance_metric,
            "query": q.to_dict(),
            "seed": smoke_seed(spec, q.name),
            "timeout_s": spec.verify.timeout,
            "warm_up": None,
        },
    )


_OPS = {"eq": "=", "not_eq": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


def filter_text(f: FilterSpec) -> str:
    """A filter as a reviewer reads it: ``category = "outerwear"``, ``n in [1, 2]``."""
    if f.op == "exists":
        return f"{f.field} exists"
    if f.op in ("in", "not_in"):
        values = ", ".join(_value(v) for v in f.values or ())
        return f"{f.field} {'in' if f.op == 'in' else 'not in'} [{values}]"
    return f"{f.field} {_OPS[f.op]} {_value(f.value)}"


def _value(v: object) -> str:
    return orjson.dumps(v).decode()


def _recall_step(spec: PlanSpec, r: RecallSpec, workload: LoadedWorkload | None) -> PostStep:
    metric = spec.target.distance_metric
    budget = spec.target.max_request_bytes
    extra: dict[str, Any] = {}
    what = plural(r.num, "sampled source vector")
    if r.queries == "workload" and workload is not None:
        extra = {"queries": "workload", "workload": workload_params(spec, workload)}
        vectors = sum(1 for q in workload.workload.queries if q.vector is not None)
        what = (
            f"{plural(min(r.num, vectors), 'vector query', 'vector queries')} of the workload "
            f"{workload.workload.file}"
        )
    return PostStep(
        "recall",
        "recall",
        "Recall SLO",
        f"_debug/recall with {what}, top {r.top_k}, "
        f"metric {metric}: avg_recall ≥ {r.min_avg_recall}"
        + (" (tune: find the cheapest passing setting)" if r.tune else "")
        + f"; float32 vectors in calls of ≤ {format_bytes(budget)}, combined weighted by "
        f"evaluated; timeout {format_duration(spec.verify.timeout)} per call",
        params={
            "num": r.num,
            "top_k": r.top_k,
            "min_avg_recall": r.min_avg_recall,
            "ann_params": dict(r.ann_params.params),
            "tune": r.tune,
            "seed": r.seed,
            "metric": metric,
            "max_request_bytes": budget,
            "timeout_s": spec.verify.timeout,
            "warm_up": None,
            **extra,
        },
    )


def post_steps(spec: PlanSpec, live: LiveState, verify: bool) -> list[PostStep]:
    steps = check_steps(spec, live.workload) if verify else []
    trim = _wal_trim_step(spec, live, verify)
    if trim is not None:
        steps.append(trim)
    return steps


def _wal_trim_step(spec: PlanSpec, live: LiveState, runs: bool) -> PostStep | None:
    """The trim step: shown when objects are eligible now, and whenever the run goes ahead
    (its writes and verification can make more eligible by the time the trim runs), so a
    reviewed plan never hides a trim. Never planned unless the plan asserts that the node
    recovers from its parts (validation refuses ``enabled`` without it; this holds for a
    ``PlanSpec`` built any other way too)."""
    trim = spec.wal_trim
    if not trim.allowed:
        return None
    ns = live.namespace
    eligible = eligible_wal_objects(
        ns.wal_objects, ns.indexed_wal, live.observed_at, trim.older_than, trim.keep_last
    )
    if not eligible and not runs:
        return None
    size = sum(o.size for o in eligible)
    verb = "Archive" if trim.mode == "archive" else "Delete"
    where = (
        f"move to namespaces/{spec.target.namespace}/wal-archive/"
        if trim.mode == "archive"
        else "delete"
    )
    rule = (
        f"indexed, older than {format_duration(trim.older_than)}, keeping the newest "
        f"{trim.keep_last}"
    )
    if eligible:
        what = (
            f"{plural_objects(len(eligible))} ({format_bytes(size)}), sequences "
            f"{eligible[0].sequence}–{eligible[-1].sequence}: {where} ({rule})"
        )
    else:
        what = f"WAL objects eligible after this run's writes ({rule}): {where}; none are now"
    return PostStep(
        "wal_trim",
        "wal_trim",
        f"{verb} WAL",
        what,
        destructive=trim.mode == "delete",
        params={
            "mode": trim.mode,
            "older_than_s": trim.older_than,
            "keep_last": trim.keep_last,
            "objects": len(eligible),
            "bytes": size,
            "first_sequence": eligible[0].sequence if eligible else None,
            "last_sequence": eligible[-1].sequence if eligible else None,
        },
        warning=_trim_warning(spec),
    )


def _trim_warning(spec: PlanSpec) -> str:
    """Whose word the trim rests on, and what undoes it."""
    if spec.target.embedded:
        basis = (
            "the embedded emulator recovers from its parts (wal_trim.node_recovers_from_parts); "
            "every released elacsym version rebuilds from the WAL alone and would need these "
            "objects"
        )
    else:
        basis = (
            "the plan asserts that the node recovers from its parts "
            "(wal_trim.node_recovers_from_parts), which only `elax-plan emulator "
            "--recover-from-parts` does: a released elacsym node rebuilds from the WAL alone and "
            "loses these documents at its next restart"
        )
    undo = (
        "; archived ones can be moved back with `elax-plan wal restore`"
        if spec.wal_trim.mode == "archive"
        else "; deleted ones are gone for good"
    )
    return basis + undo


def plural_objects(n: int) -> str:
    return f"{format_count(n)} WAL object{'s' if n != 1 else ''}"
