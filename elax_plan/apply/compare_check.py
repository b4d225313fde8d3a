"""The comparison check (runbook step 5, ``verify.compare``): the workload's queries on the
target and on the baseline, compared, against ``min_overlap_at_k``.

Owns running the queries: the sample the step names (``workload_queries`` re-reads it and
refuses a changed file), each with the same ``top_k``, metric and filters on both sides — the
target's with ``min_wal_sequence`` = the last acknowledged sequence, the baseline's with its
own ``ann_params`` laid over the query's — at most ``concurrency`` in flight per side, each
retried by the run's retry policy. A results baseline is read from its file instead. The
figures and the verdict are ``elax_plan.compare``'s. A baseline that cannot be reached (after
the retries) leaves the comparison "could not run": pending, not passed, so the next apply
runs it again. It only reads: nothing is written anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from elax_plan import __version__
from elax_plan import compare as comparison
from elax_plan.apply.check_context import CheckResult, VerifyContext, step_timeout
from elax_plan.apply.http import post
from elax_plan.apply.workload_queries import (
    planned_results,
    planned_sample,
    planned_workload,
    query_body,
)
from elax_plan.errors import TargetUnavailable, WorkloadInvalid
from elax_plan.execution_plan import PostStep
from elax_plan.retry import Interrupted
from elax_plan.spec import display_url, redact
from elax_plan.spec.workload import WorkloadQuery

Answer = comparison.Side | str  # the hits, or why the query failed on that side

ADVICE = (
    "The worst queries are listed in the summary's comparison section with both sides' top "
    "ids. For vector_ann queries raise ann_params.target_recall (or nprobe) or use rerank_mode: "
    "fp32; for bm25 and filtered queries with hits on the baseline only, check the attribute "
    "names (source.attributes.rename) and that the text analysis and filters match the "
    "baseline's."
)


class BaselineUnreachable(Exception):
    """The baseline elacsym did not answer (after the retries)."""


def _side(response: httpx.Response) -> Answer:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {' '.join(response.text.split())[:200]}"
    data = orjson.loads(response.content)
    hits = data.get("hits", []) if isinstance(data, dict) else []
    ids = tuple(str(h.get("id")) for h in hits)
    scores = [h.get("score") for h in hits]
    numeric = all(isinstance(s, int | float) and not isinstance(s, bool) for s in scores)
    return comparison.Side(ids, tuple(float(s) for s in scores) if numeric else None)


def run_side(
    ctx: VerifyContext,
    client: httpx.Client,
    path: str,
    bodies: Sequence[dict[str, Any]],
    concurrency: int,
    timeout: float,
) -> list[Answer]:
    """Every body POSTed to ``path``, ``concurrency`` at a time, each retried; a transient
    failure that outlasts the retries stops the rest and is raised (``TargetUnavailable``)."""
    abort = threading.Event()

    def one(body: dict[str, Any]) -> Answer:
        if abort.is_set():
            return "not sent: an earlier query could not reach the node"
        content = orjson.dumps(body)
        try:
            response = ctx.retrier.call(
                lambda: post(client, path, content, timeout=timeout), what="compare"
            )
        except (TargetUnavailable, Interrupted):
            abort.set()
            raise
        return _side(response)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(one, bodies))


def _baseline_client(
    ctx: VerifyContext, baseline: Mapping[str, Any], timeout: float
) -> httpx.Client:
    v = ctx.verify_spec
    spec = v.compare.baseline if v is not None and v.compare is not None else None
    url = spec.url if spec is not None and spec.url else str(baseline["url"])
    headers = {"user-agent": f"elax-plan/{__version__}"}
    if spec is not None and spec.api_key is not None:
        headers["authorization"] = f"Bearer {spec.api_key.reveal()}"
    return httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(timeout))


def _baseline_answers(
    ctx: VerifyContext,
    params: Mapping[str, Any],
    queries: Sequence[WorkloadQuery],
    results: Callable[[], Any],
) -> list[Answer]:
    baseline = params["baseline"]
    if baseline["kind"] == "results":
        expected = results().by_query_line
        return [comparison.Side(expected[q.line].ids, expected[q.line].scores) for q in queries]
    metric, timeout = str(params["metric"]), float(params["timeout_s"])
    ann = dict(baseline.get("ann_params") or {})
    bodies = [query_body(q, metric, ann_override=ann) for q in queries]
    path = f"/v2/namespaces/{quote(str(baseline['namespace']), safe='')}"
    try:
        with _baseline_client(ctx, baseline, timeout) as client:
            return run_side(
                ctx, client, f"{path}/query", bodies, int(params["concurrency"]), timeout
            )
    except TargetUnavailable as exc:
        raise BaselineUnreachable(redact(f"{exc.cause or 'error'}: {exc.message}")) from exc
    except httpx.HTTPError as exc:  # an invalid URL, a protocol error the client raised
        raise BaselineUnreachable(redact(f"{type(exc).__name__}: {exc}")) from exc


def _outcomes(
    queries: Sequence[WorkloadQuery], target: Sequence[Answer], baseline: Sequence[Answer]
) -> list[comparison.QueryOutcome]:
    out = []
    for q, t, b in zip(queries, target, baseline, strict=True):
        errors = [
            f"{side}: {a}" for side, a in (("target", t), ("baseline", b)) if isinstance(a, str)
        ]
        out.append(
            comparison.QueryOutcome(
                q.name,
                q.kind,
                q.line,
                q.top_k,
                t if not isinstance(t, str) else None,
                b if not isinstance(b, str) else None,
                "; ".join(errors),
            )
        )
    return out


def _pending(step: PostStep, detail: str, advice: str, evidence: dict[str, Any]) -> CheckResult:
    return CheckResult(step.key, step.title, False, detail, evidence, advice, incomplete=True)


def compare_check(ctx: VerifyContext, step: PostStep) -> CheckResult:
    """The workload's sample on both sides, compared; see the module docstring."""
    p = step.params
    where = {"baseline": dict(p["baseline"]), "workload": dict(p["workload"])}
    try:
        workload = planned_workload(ctx, p["workload"])
        queries = planned_sample(workload, p["workload"])
        bodies = [
            query_body(q, str(p["metric"]), min_wal_sequence=ctx.last_acked_seq) for q in queries
        ]
        target = run_side(
            ctx, ctx.client, ctx.query_path, bodies, int(p["concurrency"]), step_timeout(step)
        )
        baseline = _baseline_answers(
            ctx, p, queries, lambda: planned_results(ctx, p["baseline"], workload)
        )
    except WorkloadInvalid as exc:
        return _pending(
            step,
            f"the comparison could not run: {exc.summary}",
            "Run `elax-plan plan` to review the new workload, then `elax-plan apply` to compare.",
            where,
        )
    except BaselineUnreachable as exc:
        shown = display_url(str(p["baseline"].get("url", "")))
        return _pending(
            step,
            f"the comparison could not run: the baseline {shown} did not answer ({exc})",
            "Check that the baseline node is up and reachable from here; the comparison is "
            "pending, and the next `elax-plan apply` runs it.",
            where,
        )
    except Interrupted:
        return _pending(step, "interrupted", "Run `elax-plan apply` again to compare.", where)
    figures = comparison.compare(
        _outcomes(queries, target, baseline),
        float(p["min_overlap_at_k"]),
        {k: float(v) for k, v in dict(p["min_overlap_by_kind"]).items()},
    )
    evidence = {**where, **figures}
    return CheckResult(
        step.key,
        step.title,
        bool(figures["passed"]),
        _detail(figures),
        evidence,
        "" if figures["passed"] else ADVICE,
    )


def _detail(f: Mapping[str, Any]) -> str:
    kinds = ", ".join(
        f"{k['kind']} {k['mean_overlap']:.4f}" if k["mean_overlap"] is not None else k["kind"]
        for k in f["kinds"]
    )
    mean = f["mean_overlap"]
    head = (
        f"mean overlap@k {mean:.4f} over {f['compared']} of {f['queries']} queries ({kinds})"
        if mean is not None
        else f"none of {f['queries']} queries could be compared"
    )
    if f["passed"]:
        return f"{head} ≥ {f['min_overlap_at_k']}"
    worst = ", ".join(f"{w['name']} ({w['overlap']:.2f})" for w in f["worst"][:3])
    return f"{head}: {'; '.join(f['misses'])}" + (f"; worst: {worst}" if worst else "")
