"""Verification after the writes (SPEC §5 step 7): one executor per check kind of the plan.

``run_checks`` walks the execution plan's check steps and runs each with the
executor of its kind (``EXECUTORS``: wait for the index, parts and epoch, a
smoke query, the recall gate), reading every parameter from the step itself —
never from the plan file, so what runs is what was shown. Owns each check's
request and its verdict with evidence: what was asked, what came back, what
was expected, and for a failure the likely cause and what to try. Queries
always carry ``min_wal_sequence`` = the last acknowledged sequence and use the
portable body of CONTRACT §3.9; query vectors come from ``samples``. Transient
failures are retried (``elax_plan.retry``); a check that still cannot run is
incomplete, not failed. It only reads: the namespace is not changed here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from elax_plan.apply.http import post
from elax_plan.apply.samples import SampledRow
from elax_plan.errors import ElaxError, TargetUnavailable
from elax_plan.execution_plan import PostKind, PostStep
from elax_plan.live.model import NamespaceLive
from elax_plan.retry import Retrier
from elax_plan.spec import AnnParams, SmokeQuery, redact

TUNE_TARGET_RECALLS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass
class CheckResult:
    """One verification step's verdict and the numbers behind it."""

    key: str
    title: str
    passed: bool
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)
    advice: str = ""
    # No verdict on the data (the index never caught up, the check could not run): the run's
    # verification stays pending, so the next apply runs it again, as the advice promises.
    incomplete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "passed": self.passed,
            "detail": self.detail,
            "evidence": self.evidence,
            "advice": self.advice,
            "incomplete": self.incomplete,
        }


@dataclass
class VerifyContext:
    """What every check reads: the target, the router, and what the run acknowledged."""

    client: httpx.Client
    namespace: str
    read_namespace: Callable[[], NamespaceLive]  # already retrying transient store failures
    sample: Callable[[int, int], list[SampledRow]]  # (n, seed) → rows sampled from the source
    last_acked_seq: int | None
    wal_range: tuple[int, int] | None
    upserts_acked: int
    resends: int
    epoch_at_start: int
    retrier: Retrier
    # Waiting on ``stop`` (set by SIGINT/SIGTERM) keeps a long index timeout interruptible.
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    on_event: Callable[[str, dict[str, Any]], None] = lambda *_: None

    @property
    def query_path(self) -> str:
        return f"/v2/namespaces/{quote(self.namespace, safe='')}/query"

    @property
    def recall_path(self) -> str:
        return f"/v1/namespaces/{quote(self.namespace, safe='')}/_debug/recall"

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body, retrying transient failures; the answer object, or
        ``QueryFailed`` with status and text for any other non-200 answer."""
        content = orjson.dumps(body)
        response = self.retrier.call(lambda: post(self.client, path, content), what="verify")
        if response.status_code != 200:
            raise QueryFailed(response.status_code, response.text[:500])
        data = orjson.loads(response.content)
        return data if isinstance(data, dict) else {}


# --- the whole sequence -------------------------------------------------------------------------


Executor = Callable[[VerifyContext, PostStep], "CheckResult"]


def run_checks(ctx: VerifyContext, steps: Sequence[PostStep]) -> list[CheckResult]:
    """The plan's check steps in order, each by its kind's executor; stops early after a
    failed wait for the index, or when ``stop`` is set."""
    results: list[CheckResult] = []
    for step in steps:
        if not step.is_check:
            continue
        if ctx.stop.is_set():
            break  # interrupted: the run records its verification as unfinished
        result = _guarded(ctx, step)
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


# --- wait for the index -------------------------------------------------------------------


def wait_for_index(ctx: VerifyContext, step: PostStep) -> CheckResult:
    """Poll router.json until indexed_wal ≥ the last acknowledged sequence."""
    title = step.title
    target = ctx.last_acked_seq
    if target is None:
        return CheckResult(step.key, title, True, "nothing was acknowledged")
    timeout = float(step.params["timeout_s"])
    poll = float(step.params["poll_interval_s"])
    start = ctx.clock()
    first = last = ctx.read_namespace()
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
        if ctx.stop.wait(poll):
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
    epoch_ok = ns.epoch > ctx.epoch_at_start
    evidence = {
        "wal_range": [lo, hi],
        "parts": len(covering),
        "part_rows": part_rows,
        "upserts_acknowledged": ctx.upserts_acked,
        "resends": ctx.resends,
        "epoch_at_start": ctx.epoch_at_start,
        "epoch": ns.epoch,
    }
    detail = (
        f"Σ rows of {len(covering)} parts covering WAL {lo}–{hi} = {part_rows:,} "
        f"{'≥' if rows_ok else '<'} {ctx.upserts_acked:,} upserts acknowledged "
        f"({ctx.resends:,} resends); epoch {ctx.epoch_at_start} → {ns.epoch}"
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
    try:
        if q.kind == "sample_vectors":
            return _smoke_samples(ctx, q, metric, int(step.params["seed"]), key, title)
        body = _base_body(ctx, q, metric)
        if q.kind == "bm25" and q.bm25 is not None:
            body["rank_by"] = [q.bm25.field, "BM25", q.bm25.text]
        elif q.vector is not None:
            body["vector"] = list(q.vector)
            body["rank_by"] = ["vector", "ANN", list(q.vector)]
        hits = ctx.post(ctx.query_path, body).get("hits", [])
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
        "query": _redacted_body(body),
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
    ctx: VerifyContext, q: SmokeQuery, metric: str, seed: int, key: str, title: str
) -> CheckResult:
    n = q.sample_vectors or 0
    rows = ctx.sample(n, seed)
    misses = []
    body = _base_body(ctx, q, metric)
    for row in rows:
        body = _base_body(ctx, q, metric)
        body["vector"] = row.vector
        body["rank_by"] = ["vector", "ANN", row.vector]
        hits = ctx.post(ctx.query_path, body).get("hits", [])
        ids = [str(h.get("id")) for h in hits]
        if row.id not in ids:
            misses.append({"id": row.id, "top": ids[:5]})
    found = len(rows) - len(misses)
    evidence = {
        # What was asked (one of the bodies; they differ only in the vector).
        "query": _redacted_body(body),
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


# --- recall -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecallGate:
    """The recall step's parameters, as the plan carries them."""

    num: int
    top_k: int
    min_avg_recall: float
    ann_params: dict[str, Any]
    tune: bool
    seed: int
    metric: str

    @classmethod
    def of(cls, step: PostStep) -> RecallGate:
        p = step.params
        return cls(
            num=int(p["num"]),
            top_k=int(p["top_k"]),
            min_avg_recall=float(p["min_avg_recall"]),
            ann_params=dict(p["ann_params"]),
            tune=bool(p["tune"]),
            seed=int(p["seed"]),
            metric=str(p["metric"]),
        )


def _recall_call(
    ctx: VerifyContext, gate: RecallGate, vectors: list[list[float]], ann: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "num": len(vectors),
        "top_k": gate.top_k,
        "queries": vectors,
        "metric": gate.metric,
    }
    if ann:
        body["ann_params"] = ann
    return ctx.post(ctx.recall_path, body)


def recall(ctx: VerifyContext, step: PostStep) -> CheckResult:
    """``_debug/recall`` with sampled source vectors against ``min_avg_recall``."""
    r = RecallGate.of(step)
    title = step.title
    rows = ctx.sample(r.num, r.seed)
    vectors = [row.vector for row in rows]
    ann = AnnParams(params=r.ann_params).to_wire()
    try:
        stats = _recall_call(ctx, r, vectors, ann)
    except QueryFailed as exc:
        return CheckResult(
            step.key,
            title,
            False,
            f"_debug/recall failed: HTTP {exc.status}: {exc.text}",
            {"status": exc.status},
            "Check verify.recall.ann_params.",
        )
    avg = float(stats.get("avg_recall", 0.0))
    evaluated = int(stats.get("evaluated", 0))
    evidence: dict[str, Any] = {
        "avg_recall": avg,
        "min_avg_recall": r.min_avg_recall,
        "evaluated": evaluated,
        "queries": len(vectors),
        "top_k": r.top_k,
        "ann_params": ann,
        "avg_ann_count": stats.get("avg_ann_count"),
        "avg_exhaustive_count": stats.get("avg_exhaustive_count"),
    }
    if evaluated == 0:
        return CheckResult(
            step.key,
            title,
            False,
            "_debug/recall evaluated 0 queries",
            evidence,
            "Check that the sampled vectors have the namespace's dims.",
        )
    if avg >= r.min_avg_recall:
        return CheckResult(
            step.key,
            title,
            True,
            f"avg_recall {avg:.4f} ≥ {r.min_avg_recall} over {evaluated} queries",
            evidence,
        )
    gap = r.min_avg_recall - avg
    advice = (
        "Follow the recall-drift runbook: raise ann_params.target_recall (the probe "
        "fraction; the design calls it nprobe_ratio) or set nprobe, use rerank_mode: fp32, "
        "or raise rerank_scale."
    )
    # Tuning only on a miss (it costs a dozen recall calls), and it only measures: the
    # gate is judged on the plan's ann_params, so it still fails, and the advice says
    # which setting to adopt.
    tuned = _tune(ctx, r, vectors, ann) if r.tune else None
    if tuned is not None:
        evidence["tuning"] = tuned
        if tuned["cheapest"] is not None:
            setting = json.dumps(tuned["cheapest"], sort_keys=True)
            advice += (
                f" Tuning found the cheapest setting that meets the SLO: {setting}. "
                "The gate still fails: tuning only measures, and nothing changed in "
                "elacsym. Send these ann_params with your queries, and put them in "
                "verify.recall.ann_params so that later runs gate on what you serve."
            )
        else:
            advice += " Tuning found no passing setting up to target_recall 1.0 with fp32."
    return CheckResult(
        step.key,
        title,
        False,
        f"avg_recall {avg:.4f} is {gap:.4f} below the SLO {r.min_avg_recall} "
        f"over {evaluated} queries",
        evidence,
        advice,
    )


def _tune(
    ctx: VerifyContext, r: RecallGate, vectors: list[list[float]], ann: dict[str, Any]
) -> dict[str, Any]:
    """Probe increasing target_recall, then fp32 rerank; the cheapest setting that passes."""
    tried: list[dict[str, Any]] = []
    cheapest: dict[str, Any] | None = None
    for mode in (ann.get("rerank_mode", "erq"), "fp32"):
        for target in TUNE_TARGET_RECALLS:
            candidate = {k: v for k, v in ann.items() if k not in ("nprobe", "nprobe_ratio")}
            candidate.update({"target_recall": target, "rerank_mode": mode})
            try:
                stats = _recall_call(ctx, r, vectors, candidate)
            except QueryFailed as exc:
                tried.append({"ann_params": candidate, "error": f"HTTP {exc.status}"})
                continue
            avg = float(stats.get("avg_recall", 0.0))
            tried.append({"ann_params": candidate, "avg_recall": avg})
            if avg >= r.min_avg_recall:
                cheapest = candidate
                break
        if cheapest is not None or mode == "fp32":
            break
    return {"tried": tried, "cheapest": cheapest}


class QueryFailed(Exception):
    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(f"HTTP {status}: {text}")


def _redacted_body(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for key in ("vector",):
        if key in out:
            out[key] = f"[{len(out[key])} numbers]"
    if "rank_by" in out and out["rank_by"] and out["rank_by"][1] == "ANN":
        out["rank_by"] = [out["rank_by"][0], "ANN", f"[{len(out['rank_by'][2])} numbers]"]
    return out


def overall(results: Iterable[CheckResult]) -> bool:
    return all(r.passed for r in results)


EXECUTORS: dict[PostKind, Executor] = {
    "wait_for_index": wait_for_index,
    "verify_parts": verify_parts,
    "smoke_query": smoke_query,
    "recall": recall,
}
"""One executor per check kind; the WAL trim (not a check) has its own in ``trim``."""

__all__ = [
    "EXECUTORS",
    "CheckResult",
    "VerifyContext",
    "overall",
    "run_checks",
]
