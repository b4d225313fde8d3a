"""The recall gate (SPEC §5 step 7): ``_debug/recall`` with sampled source vectors (or, with
``recall.queries: workload``, the workload's vector queries) against ``min_avg_recall``, and,
on a miss with ``tune``, the cheapest setting that would pass.

Owns the gate's verdict, evidence and advice. Every parameter comes from the plan's recall
step: the sample (num, seed), top_k, metric, ann_params, the request byte budget
(``target.max_request_bytes``) and the per-request timeout (``verify.timeout``). A sample
larger than one request body goes out as several calls (``recall_calls``: float32 text,
each body under the budget) whose answers are combined weighted by ``evaluated``; the
detail says how many calls it took.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from elax_plan.apply.check_context import CheckResult, QueryFailed, VerifyContext, step_timeout
from elax_plan.apply.recall_calls import VectorTooLarge, combine, split_calls, vector_texts
from elax_plan.apply.workload_queries import workload_vectors
from elax_plan.execution_plan import PostStep, plural
from elax_plan.spec import AnnParams

TUNE_TARGET_RECALLS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


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
    max_request_bytes: int
    timeout_s: float

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
            max_request_bytes=int(p["max_request_bytes"]),
            timeout_s=step_timeout(step),
        )


@dataclass(frozen=True, slots=True)
class Measured:
    """The combined answer of one setting's calls, and the size of each call's body."""

    stats: dict[str, Any]
    call_bytes: list[int]
    call_evaluated: list[int]

    @property
    def calls(self) -> int:
        return len(self.call_bytes)


def measure(
    ctx: VerifyContext, gate: RecallGate, texts: list[bytes], ann: dict[str, Any]
) -> Measured:
    """``_debug/recall`` over every vector of ``texts`` with ``ann``, in as many calls as the
    byte budget needs; raises ``QueryFailed`` (a call was refused) or ``VectorTooLarge``."""
    fields: dict[str, Any] = {"top_k": gate.top_k, "metric": gate.metric}
    if ann:
        fields["ann_params"] = ann
    calls = split_calls(texts, fields, gate.max_request_bytes)
    answers = [ctx.post_bytes(ctx.recall_path, c.body, gate.timeout_s) for c in calls]
    return Measured(
        combine(answers),
        [len(c.body) for c in calls],
        [int(a.get("evaluated") or 0) for a in answers],
    )


def _calls_text(m: Measured) -> str:
    text = f"in {plural(m.calls, 'call')}"
    return text + " (combined, weighted by evaluated)" if m.calls > 1 else text


def recall(ctx: VerifyContext, step: PostStep) -> CheckResult:
    """``_debug/recall`` with sampled source vectors against ``min_avg_recall``."""
    r = RecallGate.of(step)
    if step.params.get("queries") == "workload":  # real queries instead of source rows
        vectors = workload_vectors(ctx, step.params["workload"], r.num, r.seed)
    else:
        vectors = [row.vector for row in ctx.sample(r.num, r.seed)]
    texts = vector_texts(vectors)
    ann = AnnParams(params=r.ann_params).to_wire()
    try:
        m = measure(ctx, r, texts, ann)
    except QueryFailed as exc:
        return _refused(step, exc)
    except VectorTooLarge as exc:
        return CheckResult(
            step.key,
            step.title,
            False,
            f"the recall sample cannot be sent: {exc}",
            {"vector_bytes": exc.vector_bytes, "max_request_bytes": exc.max_request_bytes},
            "Raise target.max_request_bytes to what the server accepts (real elacsym: 2MiB).",
        )
    avg = float(m.stats["avg_recall"])
    evaluated = int(m.stats["evaluated"])
    evidence: dict[str, Any] = {
        "avg_recall": avg,
        "min_avg_recall": r.min_avg_recall,
        "evaluated": evaluated,
        "queries": len(texts),
        "top_k": r.top_k,
        "ann_params": ann,
        "avg_ann_count": m.stats["avg_ann_count"],
        "avg_exhaustive_count": m.stats["avg_exhaustive_count"],
        "calls": m.calls,
        "call_bytes": m.call_bytes,
        "call_evaluated": m.call_evaluated,
        "max_request_bytes": r.max_request_bytes,
    }
    if evaluated == 0:
        return CheckResult(
            step.key,
            step.title,
            False,
            "_debug/recall evaluated 0 queries",
            evidence,
            "Check that the sampled vectors have the namespace's dims.",
        )
    over = f"over {evaluated} queries {_calls_text(m)}"
    if avg >= r.min_avg_recall:
        detail = f"avg_recall {avg:.4f} ≥ {r.min_avg_recall} {over}"
        return CheckResult(step.key, step.title, True, detail, evidence)
    gap = r.min_avg_recall - avg
    detail = f"avg_recall {avg:.4f} is {gap:.4f} below the SLO {r.min_avg_recall} {over}"
    advice = _miss_advice(ctx, r, texts, ann, evidence)
    return CheckResult(step.key, step.title, False, detail, evidence, advice)


def _refused(step: PostStep, exc: QueryFailed) -> CheckResult:
    advice = "Check verify.recall.ann_params."
    if exc.status == 413:
        advice += (
            " HTTP 413: the server's body cap is below target.max_request_bytes; set "
            "target.max_request_bytes to the server's limit."
        )
    return CheckResult(
        step.key,
        step.title,
        False,
        f"_debug/recall failed: HTTP {exc.status}: {exc.text}",
        {"status": exc.status},
        advice,
    )


def _miss_advice(
    ctx: VerifyContext,
    r: RecallGate,
    texts: list[bytes],
    ann: dict[str, Any],
    evidence: dict[str, Any],
) -> str:
    """The recall-drift runbook, and with ``tune`` what tuning found (into ``evidence``)."""
    advice = (
        "Follow the recall-drift runbook: raise ann_params.target_recall (the probe "
        "fraction; the design calls it nprobe_ratio) or set nprobe, use rerank_mode: fp32, "
        "or raise rerank_scale."
    )
    if not r.tune:
        return advice
    # Tuning only on a miss (it costs a dozen recall measurements), and it only measures: the
    # gate is judged on the plan's ann_params, so it still fails, and the advice says
    # which setting to adopt.
    tuned = _tune(ctx, r, texts, ann)
    evidence["tuning"] = tuned
    if tuned["cheapest"] is None:
        return advice + " Tuning found no passing setting up to target_recall 1.0 with fp32."
    setting = json.dumps(tuned["cheapest"], sort_keys=True)
    return advice + (
        f" Tuning found the cheapest setting that meets the SLO: {setting}. "
        "The gate still fails: tuning only measures, and nothing changed in "
        "elacsym. Send these ann_params with your queries, and put them in "
        "verify.recall.ann_params so that later runs gate on what you serve."
    )


def _tune(
    ctx: VerifyContext, r: RecallGate, texts: list[bytes], ann: dict[str, Any]
) -> dict[str, Any]:
    """Probe increasing target_recall, then fp32 rerank; the cheapest setting that passes."""
    tried: list[dict[str, Any]] = []
    cheapest: dict[str, Any] | None = None
    for mode in (ann.get("rerank_mode", "erq"), "fp32"):
        for target in TUNE_TARGET_RECALLS:
            candidate = {k: v for k, v in ann.items() if k not in ("nprobe", "nprobe_ratio")}
            candidate.update({"target_recall": target, "rerank_mode": mode})
            try:
                avg = float(measure(ctx, r, texts, candidate).stats["avg_recall"])
            except QueryFailed as exc:
                tried.append({"ann_params": candidate, "error": f"HTTP {exc.status}"})
                continue
            except VectorTooLarge as exc:  # this candidate's ann_params left no room
                tried.append({"ann_params": candidate, "error": str(exc)})
                continue
            tried.append({"ann_params": candidate, "avg_recall": avg})
            if avg >= r.min_avg_recall:
                cheapest = candidate
                break
        if cheapest is not None or mode == "fp32":
            break
    return {"tried": tried, "cheapest": cheapest}
