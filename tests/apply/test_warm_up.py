"""The warm-up query and ``verify.timeout``: planned on the first query check, run once before
it, never a verdict, its timeout reported; every verification request carries the plan's
``verify.timeout``, not ``target.timeout``.

The target is an ``httpx.MockTransport`` standing in for the server (a query that times out is
hard to make on demand against the emulator without sleeping); elax-plan's own code runs as is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from elax_plan.apply.samples import sampler
from elax_plan.apply.verify import CheckResult, VerifyContext, run_checks
from elax_plan.live.model import NamespaceLive
from elax_plan.planner import check_steps
from elax_plan.retry import Retrier, RetryPolicy
from elax_plan.spec import PlanSpec, load_plan
from tests.apply.support import make_dataset, write_plan

RECALL = "verify:\n  timeout: 90s\n  recall:\n    num: 5\n    seed: 3\n"
Handler = Callable[[httpx.Request], httpx.Response]


def plan(tmp_path: Path, extra: str = RECALL) -> PlanSpec:
    make_dataset(tmp_path / "src", files=1, rows=30, dims=8)
    path = write_plan(
        tmp_path / "plan.yaml",
        url="http://target.test",
        store=(tmp_path / "store").as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        extra=extra,
    )
    return load_plan(path, env={})


def unread() -> NamespaceLive:
    raise AssertionError("query checks do not read router.json")


def run_queries(
    spec: PlanSpec, tmp_path: Path, handler: Handler
) -> tuple[list[CheckResult], list[tuple[str, dict[str, Any]]]]:
    """The plan's query checks against ``handler``; their results and the events."""
    events: list[tuple[str, dict[str, Any]]] = []
    steps = [s for s in check_steps(spec) if s.kind in ("smoke_query", "recall")]
    with httpx.Client(
        base_url="http://target.test", transport=httpx.MockTransport(handler), timeout=30
    ) as client:
        ctx = VerifyContext(
            client=client,
            namespace="docs",
            read_namespace=unread,
            sample=sampler(spec, sorted(p.as_uri() for p in (tmp_path / "src").glob("*"))),
            last_acked_seq=4,
            wal_range=(1, 4),
            upserts_acked=30,
            resends=0,
            at_last_ack=(0, 0),
            retrier=Retrier(RetryPolicy(attempts=2, initial=0.001, max=0.001)),
            on_event=lambda name, data: events.append((name, data)),
        )
        return run_checks(ctx, steps), events


def recall_answer(request: httpx.Request) -> httpx.Response:
    n = orjson.loads(request.content)["num"]
    stats = {"avg_recall": 1.0, "avg_ann_count": 10.0, "avg_exhaustive_count": 10.0}
    return httpx.Response(200, json={**stats, "evaluated": n})


def test_a_warm_up_timeout_is_reported_and_does_not_fail_the_gate(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.extensions["timeout"]["read"]))
        if request.url.path.endswith("/query"):
            raise httpx.ReadTimeout("timed out", request=request)
        return recall_answer(request)

    [result], events = run_queries(plan(tmp_path), tmp_path, handler)
    assert result.passed, result.detail
    assert result.detail.endswith(
        "; the warm-up query timed out after 90s (verify.timeout): the IVF rebuild after "
        "the writes took longer"
    )
    assert result.evidence["warm_up"]["outcome"] == "timeout"
    assert [name for name, _ in events if name != "check_started"] == ["warm_up"]
    # Sent once (not retried), before the recall call; both with verify.timeout, not 30s.
    assert seen == [
        ("/v2/namespaces/docs/query", 90.0),
        ("/v1/namespaces/docs/_debug/recall", 90.0),
    ]


def test_a_failing_check_after_a_warm_up_timeout_names_verify_timeout(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    [result], _ = run_queries(plan(tmp_path), tmp_path, handler)
    assert not result.passed and result.incomplete
    assert "ReadTimeout" in result.detail and "warm-up query timed out" in result.detail
    assert result.advice.endswith("raise verify.timeout.")


def test_a_refused_warm_up_is_evidence_only(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/query"):
            return httpx.Response(422, text="bad query")
        return recall_answer(request)

    [result], _ = run_queries(plan(tmp_path), tmp_path, handler)
    assert result.passed
    assert result.evidence["warm_up"] == {
        "outcome": "failed",
        "seconds": result.evidence["warm_up"]["seconds"],
        "timeout_s": 90.0,
        "error": "HTTP 422: bad query",
    }
    assert result.detail.endswith("; the warm-up query failed: HTTP 422: bad query")


def test_the_warm_up_uses_the_recall_sample_and_settings_before_the_first_query_check(
    tmp_path: Path,
) -> None:
    spec = plan(
        tmp_path,
        "verify:\n  smoke_queries:\n    - name: text\n      bm25: {field: title, text: red}\n"
        "  recall:\n    num: 5\n    seed: 3\n    ann_params: {rerank_mode: fp32}\n",
    )
    steps = {s.key: s for s in check_steps(spec)}
    assert steps["smoke:text"].params["warm_up"] == {
        "num": 5,
        "seed": 3,
        "metric": "cosine",
        "ann_params": {"rerank_mode": "fp32"},
        "timeout_s": 300.0,
    }
    assert "after one warm-up vector query (timeout 5m)" in steps["smoke:text"].detail
    assert steps["recall"].params["warm_up"] is None
    assert steps["recall"].params["max_request_bytes"] == 2 * 1024 * 1024
    assert steps["smoke:text"].params["timeout_s"] == steps["recall"].params["timeout_s"] == 300

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/query"):
            body = orjson.loads(request.content)
            if body["rank_by"][1] == "ANN":  # the warm-up
                assert body["top_k"] == 1 and body["min_wal_sequence"] == 4
                assert body["ann_params"] == {"rerank_mode": "fp32"}
                return httpx.Response(200, json={"hits": []})
            return httpx.Response(200, json={"hits": [{"id": "1", "score": -1.0}]})
        return recall_answer(request)

    results, events = run_queries(spec, tmp_path, handler)
    assert [r.passed for r in results] == [True, True]
    assert results[0].evidence["warm_up"]["outcome"] == "ok"
    assert "warm_up" not in results[1].evidence
    assert [name for name, _ in events if name != "check_started"] == ["warm_up"]


def test_no_warm_up_without_a_vector_query(tmp_path: Path) -> None:
    bm25_only = (
        "verify:\n  smoke_queries:\n    - name: text\n      bm25: {field: title, text: red}\n"
    )
    assert check_steps(plan(tmp_path, bm25_only))[-1].params["warm_up"] is None
