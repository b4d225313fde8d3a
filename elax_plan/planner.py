"""The planner: (PlanSpec, LiveState) → ExecutionPlan, with no I/O, clock or randomness.

Owns the diff between what the plan wants ("this namespace holds this source
dataset, verified") and what is there: per source file ``+`` new, ``~`` changed,
``>`` partly written, ``=`` done, ``-`` gone; the preconditions judged on live
values; the post-steps (wait for the index, parts and epoch, smoke queries,
recall, WAL trim); and the estimates. Everything it knows arrives in
``LiveState``, including the one clock reading (``observed_at``), so the same
inputs always give the same plan — the golden cases in ``tests/cases`` rely on it.
Its input types are ``live.state_view``'s and ``live.model``'s (with the WAL
trim rule, ``eligible_wal_objects``, which ``apply.trim`` shares); it must not
call a reader or define a concept of its own input.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from elax_plan.execution_plan import (
    Check,
    ExecutionPlan,
    FileStep,
    PlanInputs,
    PlanTotals,
    PostStep,
    format_bytes,
    format_count,
    plural,
)
from elax_plan.live.model import (
    NamespaceLive,
    SourceFile,
    SourceListing,
    TargetLive,
    eligible_wal_objects,
    same_source,
)
from elax_plan.live.state_view import LedgerView, LiveState
from elax_plan.spec import PlanSpec, display_url, format_duration, redact
from elax_plan.state import NamespaceRecord

# Parts store vectors as float32 plus ids and attribute JSON; this is the estimate's overhead
# per row on top of 4 bytes per dimension.
PART_ROW_OVERHEAD = 64


def spec_digest(spec: PlanSpec) -> str:
    """sha256 of the effective plan (after interpolation), secrets hidden."""
    data = spec.to_dict()
    data.pop("source_path", None)
    data.pop("digest", None)
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def plan_inputs(spec: PlanSpec, live: LiveState) -> PlanInputs:
    """What a plan computed now depends on (compared by ``stale_reasons``)."""
    ledger, record = live.ledger, live.namespace_record
    return PlanInputs(
        plan_digest=spec.digest,
        spec_digest=spec_digest(spec),
        ledger_lineage=ledger.lineage if ledger else None,
        ledger_serial=ledger.serial if ledger else None,
        source_fingerprints={f.url: f.fingerprint for f in live.source.files},
        namespace_metric=record.metric if record else None,
        namespace_dims=record.vector_dims if record else None,
    )


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


def _total_requests(request_bytes: list[int], chunk_bytes: int) -> int:
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


def _same_target(spec: PlanSpec, ledger: LedgerView) -> bool:
    t = ledger.target
    # The ledger keeps the store as displayed (credentials as ***): compare like with like.
    return not t or (
        t.get("store") == display_url(spec.target.store)
        and t.get("namespace") == spec.target.namespace
    )


def _file_steps(spec: PlanSpec, live: LiveState) -> list[FileStep]:
    ledger = live.ledger
    known = ledger.files if ledger is not None and _same_target(spec, ledger) else {}
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


# --- preconditions -------------------------------------------------------------------------


def _preconditions(
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
    """The indexer's lag is judged only for a fresh start that writes."""
    lag, limit = ns.wal_lag, spec.preconditions.max_initial_wal_lag
    if resuming:
        ok, detail = True, "resuming an interrupted run: the throttle waits for the indexer"
    elif not writes:
        ok, detail = True, "nothing to write"
    else:
        ok = lag <= limit
        detail = (
            ""
            if ok
            else "the indexer is behind; wait for it to catch up (is an indexer or "
            "`elax-cli compact` running?) before starting a backfill"
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


# --- post-steps ----------------------------------------------------------------------------


def _verification_reason(spec: PlanSpec, live: LiveState, writes: bool) -> str:
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
        return "the smoke queries or the recall gate changed since the last verification"
    return ""


def smoke_seed(spec: PlanSpec, name: str) -> int:
    """The seed of a smoke query's sampled rows: the recall seed, offset by the name."""
    seed = spec.verify.recall.seed if spec.verify.recall is not None else 0
    return seed + sum(name.encode())


def check_steps(spec: PlanSpec) -> list[PostStep]:
    """The verification steps of ``spec``, each with every parameter its executor needs."""
    steps: list[PostStep] = []
    v = spec.verify
    metric = spec.target.distance_metric
    if v.wait_for_index:
        steps.append(
            PostStep(
                "wait_for_index",
                "wait_for_index",
                "Wait for the index",
                "until indexed_wal ≥ the last acknowledged wal_sequence "
                f"(timeout {format_duration(v.index_timeout)})",
                params={
                    "timeout_s": v.index_timeout,
                    "poll_interval_s": spec.throttle.poll_interval,
                },
            )
        )
    steps.append(
        PostStep(
            "verify_parts",
            "verify_parts",
            "Verify parts and epoch",
            "Σ rows of the parts covering the acknowledged WAL range ≥ upserts "
            "acknowledged; router epoch advanced",
        )
    )
    for q in v.smoke_queries:
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
            what += f", expecting ids {', '.join(q.expect_ids)}"
        if q.filters is not None:
            what += f", filter {q.filters.field} {q.filters.op}"
        steps.append(
            PostStep(
                "smoke_query",
                f"smoke:{q.name}",
                f"Smoke query: {q.name}",
                what,
                params={
                    "name": q.name,
                    "metric": metric,
                    "query": q.to_dict(),
                    "seed": smoke_seed(spec, q.name),
                },
            )
        )
    if v.recall is not None:
        r = v.recall
        steps.append(
            PostStep(
                "recall",
                "recall",
                "Recall SLO",
                f"_debug/recall with {plural(r.num, 'sampled source vector')}, top {r.top_k}, "
                f"metric {metric}: avg_recall ≥ {r.min_avg_recall}"
                + (" (tune: find the cheapest passing setting)" if r.tune else ""),
                params={
                    "num": r.num,
                    "top_k": r.top_k,
                    "min_avg_recall": r.min_avg_recall,
                    "ann_params": dict(r.ann_params.params),
                    "tune": r.tune,
                    "seed": r.seed,
                    "metric": metric,
                },
            )
        )
    return steps


def _post_steps(spec: PlanSpec, live: LiveState, verify: bool) -> list[PostStep]:
    steps = check_steps(spec) if verify else []
    trim = _wal_trim_step(spec, live, verify)
    if trim is not None:
        steps.append(trim)
    return steps


def _wal_trim_step(spec: PlanSpec, live: LiveState, runs: bool) -> PostStep | None:
    """The trim step: shown when objects are eligible now, and whenever the run goes ahead
    (its writes and verification can make more eligible by the time the trim runs), so a
    reviewed plan never hides a trim."""
    trim = spec.wal_trim
    if not trim.enabled:
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
        warning="elacsym nodes rebuild a namespace from its WAL (every released version): "
        "after a restart they need these objects"
        + (
            "; archived ones can be moved back from wal-archive/"
            if trim.mode == "archive"
            else "; deleted ones are gone for good"
        ),
    )


def plural_objects(n: int) -> str:
    return f"{format_count(n)} WAL object{'s' if n != 1 else ''}"


# --- the plan ------------------------------------------------------------------------------


def build_plan(spec: PlanSpec, live: LiveState) -> ExecutionPlan:
    """The execution plan for ``spec`` given ``live``; pure and deterministic."""
    files = _file_steps(spec, live)
    writes = any(s.writes for s in files)
    resuming = any(s.action == "resume" for s in files) or bool(
        live.ledger and live.ledger.run_in_progress and writes
    )
    reason = _verification_reason(spec, live, writes)
    post = _post_steps(spec, live, verify=bool(reason))
    preconditions = _preconditions(spec, live, files, resuming)
    totals = _totals(spec, files, post)
    return ExecutionPlan(
        plan={
            "name": spec.name,
            "description": spec.description,
            "file": str(spec.source_path),
            "digest": spec.digest,
        },
        target={
            "url": redact(spec.target.url),
            "store": redact(spec.target.store),
            "namespace": spec.target.namespace,
            "metric": spec.target.distance_metric,
            "vector_dims": spec.target.vector_dims,
        },
        namespace=_namespace_facts(live.namespace),
        observed_at=datetime.fromtimestamp(live.observed_at, UTC).isoformat(),
        files=files,
        preconditions=preconditions,
        post_steps=post,
        totals=totals,
        inputs=plan_inputs(spec, live),
        warnings=_warnings(spec, live, writes, totals),
        verification_reason=reason,
    )


def _totals(spec: PlanSpec, files: list[FileStep], post: list[PostStep]) -> PlanTotals:
    """The numbers of the closing line; requests counted as apply packs the writing files."""
    writing = [s for s in files if s.writes]
    return PlanTotals(
        files_to_write=len(writing),
        resumed=sum(1 for s in files if s.action == "resume"),
        rows=sum(s.est_rows for s in writing),
        bytes=sum(s.est_bytes for s in writing),
        requests=_total_requests([s.est_bytes for s in writing], spec.ingest.chunk_bytes),
        skipped=sum(1 for s in files if s.action == "skip"),
        gone=sum(1 for s in files if s.action == "gone"),
        checks=sum(1 for p in post if p.is_check),
        destructive=sum(1 for p in post if p.destructive),
        changes=bool(writing) or bool(post),
    )


def _warnings(spec: PlanSpec, live: LiveState, writes: bool, totals: PlanTotals) -> list[str]:
    """What the reviewer should know that is not a step: another target's ledger, the
    concurrency hazard, files gone from the source, and the last run when nothing changes."""
    ledger = live.ledger
    warnings: list[str] = []
    if ledger is not None and not _same_target(spec, ledger):
        warnings.append(
            "The state ledger was written for another store or namespace "
            f"({ledger.target.get('store')} / {ledger.target.get('namespace')}); "
            "every file is planned as new."
        )
    if spec.ingest.concurrency > 1 and writes:
        warnings.append(
            f"concurrency {spec.ingest.concurrency}: the real elacsym can lose a write when "
            "appends to one namespace overlap (hazard H1); elax-plan detects duplicate "
            "wal_sequence answers and re-sends both chunks."
        )
    if totals.gone:
        warnings.append(
            f"{plural(totals.gone, 'file')} in the ledger "
            + ("is" if totals.gone == 1 else "are")
            + " gone from the source; "
            + ("its" if totals.gone == 1 else "their")
            + " rows stay in the namespace (nothing is deleted)."
        )
    excluded = live.source.excluded
    if excluded:
        warnings.append(
            f"source.uri also matched {format_count(len(excluded))} file(s) of this plan's own "
            f"state under {live.source.state_root} (such as {excluded[0]}); they are left out "
            "of the source."
        )
    listed = {f.url for f in live.source.files}
    for url, lost in sorted(live.lost_writes.items()):
        if url not in listed:
            warnings.append(
                f"Acknowledged rows of {url} were lost on the server ({lost.reason}), and the "
                "file is gone from the source, so they cannot be written again."
            )
    if not totals.changes and ledger is not None:
        where = ledger.summary_location
        warnings.append(
            f"Last run {ledger.last_run_id or ''}: verification {ledger.verification}"
            + (f"; summary at {where}" if where else "")
            + "."
        )
    return warnings


def _namespace_facts(ns: NamespaceLive) -> dict[str, Any]:
    """The live router facts the plan's header shows."""
    return {
        "exists": ns.exists,
        "epoch": ns.epoch,
        "wal_highwater": ns.wal_highwater,
        "indexed_wal": ns.indexed_wal,
        "wal_lag": ns.wal_lag,
        "parts": len(ns.parts),
        "part_rows": sum(p.rows for p in ns.parts),
    }
