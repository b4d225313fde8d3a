"""Verification after the writes (SPEC §5 step 7): one executor per check kind of the plan.

``run_checks`` walks the execution plan's check steps and runs each with the
executor of its kind (``EXECUTORS``: wait for the index, parts and epoch, a
smoke query, the recall gate in ``recall_gate``, the comparison with a baseline in
``compare_check``), reading every parameter from
the step itself — never from the plan file, so what runs is what was shown.
Owns each check's request and its verdict with evidence: what was asked, what
came back, what was expected, and for a failure the likely cause and what to
try; and the warm-up query the plan puts before the first query check. Queries
always carry ``min_wal_sequence`` = the last acknowledged sequence, use the
portable body of CONTRACT §3.9 and the step's ``verify.timeout``; query vectors
come from ``samples``. Transient failures are retried (``elax_plan.retry``); a
check that still cannot run is incomplete, not failed. It only reads: the
namespace is not changed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from elax_plan.apply.check_context import (
    CheckResult,
    Executor,
    QueryFailed,
    VerifyContext,
    redacted_body,
    step_timeout,
)
from elax_plan.apply.compare_check import compare_check
from elax_plan.apply.http import post
from elax_plan.apply.recall_gate import recall
from elax_plan.apply.throttle import FIRST_WAIT
from elax_plan.errors import ElaxError, TargetUnavailable
from elax_plan.execution_plan import PostKind, PostStep, plural
from elax_plan.live.delivery import stamp, wal_ops_digest
from elax_plan.spec import AnnParams, SmokeQuery, redact

# --- the whole sequence -------------------------------------------------------------------------


def run_checks(ctx: VerifyContext, steps: Sequence[PostStep]) -> list[CheckResult]:
    """The plan's check steps in order, each by its kind's executor, the planned warm-up query
    first; stops early after a failed wait for the index, or when ``stop`` is set."""
    results: list[CheckResult] = []
    for step in steps:
        if not step.is_check:
            continue
        if ctx.stop.is_set():
            break  # interrupted: the run records its verification as unfinished
        ctx.on_event("check_started", {"key": step.key, "kind": step.kind})
        planned = step.params.get("warm_up")
        warmed = warm_up(ctx, planned) if planned else None
        result = _guarded(ctx, step)
        if warmed is not None:
            _note_warm_up(result, warmed)
        results.append(result)
        if step.kind == "wait_for_index" and not result.passed:
            break  # parts cannot add up before the index caught up
    return results


def _guarded(ctx: VerifyContext, step: PostStep) -> CheckResult:
    # A target or store that fails mid-verification (after the retries) fails that check with
    # the cause, so the run still ends with a complete summary instead of a traceback.
    try:
        return EXECUTORS[step.kind](ctx, step)
    except (ElaxError, httpx.HTTPError, OSError) as exc:
        if isinstance(exc, TargetUnavailable):
            cause = f"{exc.cause or type(exc).__name__}: {exc.message}"
        elif isinstance(exc, ElaxError):
            cause = exc.message
        else:
            cause = f"{type(exc).__name__}: {exc}"
        return CheckResult(
            step.key,
            step.title,
            False,
            f"the check could not run: {redact(cause)}",
            {},
            "Check that the target and its store are reachable, then run `elax-plan apply` "
            "again to verify.",
            incomplete=True,
        )


# --- warm-up ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WarmUp:
    """How the warm-up query went: evidence for the check after it, never a verdict."""

    outcome: str  # "ok", "timeout", "failed" or "skipped"
    seconds: float
    timeout_s: float
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "seconds": round(self.seconds, 3),
            "timeout_s": self.timeout_s,
            "error": self.error,
        }

    def note(self) -> str:
        """A clause for the check's detail; empty when the warm-up went as planned."""
        if self.outcome == "timeout":
            return (
                f"the warm-up query timed out after {self.timeout_s:g}s (verify.timeout): "
                "the IVF rebuild after the writes took longer"
            )
        if self.outcome == "failed":
            return f"the warm-up query failed: {self.error}"
        if self.outcome == "skipped":
            return f"no warm-up query: {self.error}"
        return ""


def warm_up(ctx: VerifyContext, planned: Mapping[str, Any]) -> WarmUp:
    """One vector query (top 1) with a sampled source vector before the first query check.

    The first vector query after writes rebuilds the IVF under the namespace lock (CONTRACT
    §3.5), with the metric and ann_params the plan gives it (the recall gate's, so the checks
    find that index built): this query pays for the rebuild, so a check's numbers and its
    timeout are about the check. Sent once, never retried and never a verdict: if it fails,
    the checks after it (which retry) say whether the target answers; a timeout is reported
    in the next check's detail, so a check that then fails names the likely cause.
    """
    timeout = float(planned["timeout_s"])
    rows = ctx.sample(int(planned["num"]), int(planned["seed"]))
    if not rows:
        return WarmUp("skipped", 0.0, timeout, "no source row with a vector could be sampled")
    vector = rows[0].vector
    body: dict[str, Any] = {
        "vector": vector,
        "rank_by": ["vector", "ANN", vector],
        "top_k": 1,
        "metric": planned["metric"],
    }
    if ctx.last_acked_seq is not None:
        body["min_wal_sequence"] = ctx.last_acked_seq
    ann = AnnParams(params=dict(planned["ann_params"])).to_wire()
    if ann:
        body["ann_params"] = ann
    start = ctx.clock()
    try:
        response = post(ctx.client, ctx.query_path, orjson.dumps(body), timeout=timeout)
    except TargetUnavailable as exc:
        timed_out = isinstance(exc.__cause__, httpx.TimeoutException)
        outcome = "timeout" if timed_out else "failed"
        warmed = WarmUp(outcome, ctx.clock() - start, timeout, redact(exc.message))
    else:
        ok = response.status_code == 200
        error = "" if ok else f"HTTP {response.status_code}: {response.text[:200]}"
        warmed = WarmUp("ok" if ok else "failed", ctx.clock() - start, timeout, error)
    ctx.on_event("warm_up", warmed.to_json())
    return warmed


def _note_warm_up(result: CheckResult, warmed: WarmUp) -> None:
    result.evidence["warm_up"] = warmed.to_json()
    note = warmed.note()
    if note:
        result.detail += f"; {note}"
    if warmed.outcome == "timeout" and not result.passed:
        result.advice = (
            f"{result.advice} The warm-up query timed out too: on a large namespace the "
            "first query after writes rebuilds the IVF under a lock; raise verify.timeout."
        ).strip()


# --- wait for the index -------------------------------------------------------------------


def wait_for_index(ctx: VerifyContext, step: PostStep) -> CheckResult:
    """Poll router.json until indexed_wal ≥ the last acknowledged sequence (after
    ``FIRST_WAIT``, then at doubling waits up to the throttle's poll interval)."""
    title = step.title
    target = ctx.last_acked_seq
    if target is None:
        return CheckResult(step.key, title, True, "nothing was acknowledged")
    timeout = float(step.params["timeout_s"])
    poll = float(step.params["poll_interval_s"])
    start = ctx.clock()
    first = last = ctx.read_namespace()
    wait = FIRST_WAIT  # doubling up to poll: a quick indexer is seen at once
    while last.indexed_wal < target:
        if ctx.clock() - start >= timeout:
            moved = last.indexed_wal != first.indexed_wal
            cause = (
                "indexed_wal moved but too slowly: the indexer is behind; raise "
                "verify.index_timeout or give the indexer more capacity"
                if moved
                else "indexed_wal never moved: the likely cause is that no indexer is "
                "running (the real elacsym only indexes when `elax-cli compact` runs)"
            )
            return CheckResult(
                step.key,
                title,
                False,
                f"indexed_wal is {last.indexed_wal} after {timeout:g}s, below the last "
                f"acknowledged wal_sequence {target}",
                {
                    "indexed_wal_start": first.indexed_wal,
                    "indexed_wal": last.indexed_wal,
                    "wal_highwater": last.wal_highwater,
                    "target": target,
                    "waited_s": round(ctx.clock() - start, 3),
                },
                advice=cause + ". Once it has caught up, run `elax-plan apply` again "
                "to finish the verification.",
                incomplete=True,
            )
        wait = min(poll, wait)
        if ctx.stop.wait(wait):
            return CheckResult(
                step.key,
                title,
                False,
                f"interrupted while indexed_wal was {last.indexed_wal}, below the last "
                f"acknowledged wal_sequence {target}",
                {"indexed_wal": last.indexed_wal, "target": target},
                "Run `elax-plan apply` again to finish the verification.",
                incomplete=True,
            )
        wait *= 2
        last = ctx.read_namespace()
        ctx.on_event(
            "lag",
            {
                "wal_highwater": last.wal_highwater,
                "indexed_wal": last.indexed_wal,
                "lag": last.wal_lag,
                "paused": False,
            },
        )
    return CheckResult(
        step.key,
        title,
        True,
        f"indexed_wal {last.indexed_wal} ≥ last acknowledged wal_sequence {target}",
        {
            "indexed_wal": last.indexed_wal,
            "target": target,
            "waited_s": round(ctx.clock() - start, 3),
        },
    )


# --- parts and epoch ----------------------------------------------------------------------


def verify_parts(ctx: VerifyContext, step: PostStep) -> CheckResult:
    """Σ rows of the parts covering the acknowledged WAL range ≥ upserts; epoch advanced."""
    title = step.title
    ns = ctx.read_namespace()
    if ctx.wal_range is None:
        return CheckResult(step.key, title, True, "nothing was acknowledged")
    lo, hi = ctx.wal_range
    covering = [p for p in ns.parts if p.wal_end >= lo and p.wal_start <= hi]
    part_rows = sum(p.rows for p in covering)
    rows_ok = part_rows >= ctx.upserts_acked
    epoch_ok, epoch_text = _epoch_advanced(ctx, ns.epoch, hi)
    epoch0, indexed0 = ctx.at_last_ack or (-1, -1)
    evidence = {
        "wal_range": [lo, hi],
        "parts": len(covering),
        "part_rows": part_rows,
        "upserts_acknowledged": ctx.upserts_acked,
        "resends": ctx.resends,
        "epoch_at_last_ack": epoch0,
        "indexed_wal_at_last_ack": indexed0,
        "epoch": ns.epoch,
    }
    detail = (
        f"Σ rows of {len(covering)} parts covering WAL {lo}–{hi} = {part_rows:,} "
        f"{'≥' if rows_ok else '<'} {ctx.upserts_acked:,} upserts acknowledged "
        f"({ctx.resends:,} resends); {epoch_text}"
    )
    advice = ""
    if not rows_ok:
        advice = (
            "The parts do not account for every acknowledged upsert: the indexer may have "
            "dropped a batch, or a write was lost after its acknowledgement. Compare the WAL "
            "range with `elax-cli export-wal` and re-run the affected files."
        )
    elif not epoch_ok:
        advice = "router.json's epoch did not advance: is the indexer publishing parts?"
    return CheckResult(step.key, title, rows_ok and epoch_ok, detail, evidence, advice)


def _epoch_advanced(ctx: VerifyContext, epoch: int, last: int) -> tuple[bool, str]:
    """Whether the indexer published after this run's last acknowledged write, and how that
    was judged. Every append bumps the epoch (CONTRACT §4.3), so the epoch before the writes
    says nothing: it is compared with the router read after the last acknowledgement —
    unless that reading already showed the writes indexed (compacted during the writes)."""
    if ctx.at_last_ack is None:
        return True, f"epoch {epoch} (this run wrote nothing, so no advance is expected)"
    epoch0, indexed0 = ctx.at_last_ack
    if indexed0 >= last:
        return True, (
            f"indexed during the writes (indexed_wal {indexed0} ≥ {last} at the last "
            f"acknowledgement, epoch {epoch0}); epoch now {epoch}"
        )
    ok = epoch > epoch0
    return ok, f"epoch {epoch0} after the last acknowledgement → {epoch}"


# --- smoke queries ------------------------------------------------------------------------


def _base_body(ctx: VerifyContext, q: SmokeQuery, metric: str) -> dict[str, Any]:
    body: dict[str, Any] = {"top_k": q.top_k, "metric": metric}
    if ctx.last_acked_seq is not None:
        body["min_wal_sequence"] = ctx.last_acked_seq
    ann = q.ann_params.to_wire()
    if ann:
        body["ann_params"] = ann
    if q.filters is not None:
        body["filters"] = q.filters.to_wire()
    return body


def smoke_query(ctx: VerifyContext, step: PostStep) -> CheckResult:
    """One smoke query from the plan: hits, expected ids, or sampled rows finding themselves."""
    q = SmokeQuery.from_dict(step.params["query"])
    metric = str(step.params["metric"])
    key, title = step.key, step.title
    timeout = step_timeout(step)
    try:
        if q.kind == "sample_vectors":
            seed = int(step.params["seed"])
            return _smoke_samples(ctx, q, metric, seed, timeout, key, title)
        body = _base_body(ctx, q, metric)
        if q.kind == "bm25" and q.bm25 is not None:
            body["rank_by"] = [q.bm25.field, "BM25", q.bm25.text]
        elif q.vector is not None:
            body["vector"] = list(q.vector)
            body["rank_by"] = ["vector", "ANN", list(q.vector)]
        hits = ctx.post(ctx.query_path, body, timeout).get("hits", [])
    except QueryFailed as exc:
        return CheckResult(
            key,
            title,
            False,
            f"the query failed: HTTP {exc.status}: {exc.text}",
            {"status": exc.status},
            "Check the query fields and the target.",
        )
    ids = [str(h.get("id")) for h in hits]
    missing = [i for i in q.expect_ids if i not in ids]
    passed = len(hits) >= q.min_hits and not missing
    shown = [{"id": h.get("id"), "score": h.get("score")} for h in hits[:10]]
    evidence = {
        "query": redacted_body(body),
        "hits": len(hits),
        "top": shown,
        "expected_min_hits": q.min_hits,
        "expected_ids": list(q.expect_ids),
    }
    if passed:
        return CheckResult(key, title, True, f"{len(hits)} hits (≥ {q.min_hits})", evidence)
    problems = []
    if len(hits) < q.min_hits:
        problems.append(f"{len(hits)} hits, expected at least {q.min_hits}")
    if missing:
        problems.append(f"expected ids not in the top {q.top_k}: {', '.join(missing)}")
    return CheckResult(
        key,
        title,
        False,
        "; ".join(problems),
        evidence,
        "Check that the rows were written (ids, attribute names) and that "
        "the query matches the data.",
    )


def _smoke_samples(
    ctx: VerifyContext,
    q: SmokeQuery,
    metric: str,
    seed: int,
    timeout: float,
    key: str,
    title: str,
) -> CheckResult:
    n = q.sample_vectors or 0
    rows = ctx.sample(n, seed)
    misses = []
    body = _base_body(ctx, q, metric)
    for row in rows:
        body = _base_body(ctx, q, metric)
        body["vector"] = row.vector
        body["rank_by"] = ["vector", "ANN", row.vector]
        hits = ctx.post(ctx.query_path, body, timeout).get("hits", [])
        ids = [str(h.get("id")) for h in hits]
        if row.id not in ids:
            misses.append({"id": row.id, "top": ids[:5]})
    found = len(rows) - len(misses)
    evidence = {
        # What was asked (one of the bodies; they differ only in the vector).
        "query": redacted_body(body),
        "sampled": len(rows),
        "found": found,
        "misses": misses[:10],
        "top_k": q.top_k,
    }
    if not rows:
        return CheckResult(
            key,
            title,
            False,
            "no source row with a vector could be sampled",
            evidence,
            "Check source.vector_field.",
        )
    if misses:
        return CheckResult(
            key,
            title,
            False,
            f"{len(misses)} of {len(rows)} sampled rows did not find their own id in the "
            f"top {q.top_k}",
            evidence,
            "Rows may be missing from the namespace, or ANN settings miss them: try "
            "ann_params {use_ivf: false} to tell the two apart.",
        )
    return CheckResult(
        key,
        title,
        True,
        f"all {len(rows)} sampled rows found their own id in the top {q.top_k}",
        evidence,
    )


# --- the WAL a restart replays -------------------------------------------------------------


def wal_replayable(ctx: VerifyContext, step: PostStep) -> CheckResult:
    """Every WAL object from this plan's first write on is a readable batch: from its first
    acknowledged one, or from the highwater its run started at (a kill leaves writes that no
    ledger names, racing appends may have torn one of them), whichever is lower.

    A node rebuilds a namespace by replaying its whole WAL (CONTRACT §4.1), so one torn
    object — racing appends, hazard H1, also between another writer and this plan's — makes
    it fail to load the namespace at its next restart, although every row was written and
    proven. Objects a delivery proof read whole and that have not changed since are not read
    again: the cost is the objects other writers added."""
    acked = [seq for seq in ctx.proven] + ([ctx.wal_range[0]] if ctx.wal_range else [])
    if not acked:
        return CheckResult(step.key, step.title, True, "nothing was acknowledged")
    lo = min(acked + ([ctx.wal_floor + 1] if ctx.wal_floor is not None else []))
    objects = [w for w in ctx.list_wal() if w.sequence >= lo]
    unproven = [w for w in objects if ctx.proven.get(w.sequence) != stamp(w)]
    torn = [
        w.sequence
        for w in unproven
        if (data := ctx.read_wal(w.sequence)) is None or wal_ops_digest(data) is None
    ]
    hi = max((w.sequence for w in objects), default=lo)
    evidence = {"range": [lo, hi], "objects": len(objects), "read": len(unproven), "torn": torn}
    if not torn:
        return CheckResult(
            step.key,
            step.title,
            True,
            f"WAL-{lo} to WAL-{hi}: {plural(len(objects), 'object')}, every one a readable batch",
            evidence,
        )
    named = ", ".join(f"WAL-{seq}" for seq in torn[:5]) + ("…" if len(torn) > 5 else "")
    return CheckResult(
        step.key,
        step.title,
        False,
        f"{named} {'is' if len(torn) == 1 else 'are'} not a readable WAL batch (torn by racing "
        "appends, hazard H1): the node will fail to load this namespace at its next restart, "
        "although this run's rows are written and proven",
        evidence,
        advice="Do not restart the node before repairing the namespace: rebuild it from the "
        "source (a new namespace, or after removing it), and keep other writers off the "
        "namespace while elax-plan writes (or use a node that serialises appends).",
    )


def overall(results: Iterable[CheckResult]) -> bool:
    return all(r.passed for r in results)


EXECUTORS: dict[PostKind, Executor] = {
    "wait_for_index": wait_for_index,
    "verify_parts": verify_parts,
    "wal_replayable": wal_replayable,
    "smoke_query": smoke_query,
    "recall": recall,
    "compare": compare_check,
}
"""One executor per check kind; the WAL trim (not a check) has its own in ``trim``."""

__all__ = [
    "EXECUTORS",
    "CheckResult",
    "VerifyContext",
    "WarmUp",
    "overall",
    "run_checks",
    "warm_up",
]
