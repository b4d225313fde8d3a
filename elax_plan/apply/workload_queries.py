"""The workload a verification step was planned with, read again at apply, and each workload
query as a request body.

Owns re-reading the query workload and an expected-results file (``live.workload``) and
refusing them when their digests differ from the step's: a file edited after ``plan`` is not
what was reviewed, so the check cannot run (``WorkloadInvalid``: the check is pending, and the
next ``plan``/``apply`` shows the new file). The URL read is the plan file's (it may carry credentials the step does
not show). Also owns the query body of CONTRACT §3.9 for a workload query, on either side.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from elax_plan.apply.check_context import VerifyContext
from elax_plan.errors import WorkloadInvalid
from elax_plan.live.workload import read_bytes
from elax_plan.spec import AnnParams, display_url
from elax_plan.spec.issues import PlanIssue
from elax_plan.spec.workload import (
    ExpectedResults,
    Workload,
    WorkloadQuery,
    parse_results,
    parse_workload,
)


def _changed(file: str) -> WorkloadInvalid:
    issue = PlanIssue(
        file,
        "changed since the plan was made: a comparison runs the workload that was reviewed; "
        "run `elax-plan plan` to see the new one",
    )
    return WorkloadInvalid(file, [issue])


def _real_url(shown: str, candidates: list[str | None]) -> str:
    """The plan file's URL whose display form is ``shown`` (else ``shown`` itself)."""
    return next((u for u in candidates if u is not None and display_url(u) == shown), shown)


def planned_workload(ctx: VerifyContext, workload: Mapping[str, Any]) -> Workload:
    """The workload file the step names, read again and checked against its digest."""
    v = ctx.verify_spec
    url = _real_url(str(workload["file"]), [v.workload if v is not None else None])
    dims = workload.get("vector_dims")
    parsed = parse_workload(read_bytes(url), str(workload["file"]), vector_dims=dims)
    if parsed.digest != workload["digest"]:
        raise _changed(str(workload["file"]))
    return parsed


def planned_sample(workload: Workload, params: Mapping[str, Any]) -> list[WorkloadQuery]:
    """The sample of ``workload`` the step's workload parameters name."""
    return list(workload.sample(int(params["sample"]), int(params["seed"])))


def planned_results(
    ctx: VerifyContext, baseline: Mapping[str, Any], workload: Workload
) -> ExpectedResults:
    """The expected-results file the step names, read again and checked against its digest."""
    v = ctx.verify_spec
    results = v.compare.baseline.results if v is not None and v.compare is not None else None
    url = _real_url(str(baseline["file"]), [results])
    parsed = parse_results(read_bytes(url), str(baseline["file"]), workload)
    if parsed.digest != baseline["digest"]:
        raise _changed(str(baseline["file"]))
    return parsed


def query_body(
    q: WorkloadQuery,
    metric: str,
    *,
    ann_override: Mapping[str, Any] | None = None,
    min_wal_sequence: int | None = None,
) -> dict[str, Any]:
    """The portable body (CONTRACT §3.9) of ``q``; ``ann_override`` is laid over the query's
    own ann_params (a baseline's)."""
    body: dict[str, Any] = {"top_k": q.top_k, "metric": metric}
    if min_wal_sequence is not None:
        body["min_wal_sequence"] = min_wal_sequence
    ann = AnnParams(params={**q.ann_params.params, **(ann_override or {})}).to_wire()
    if ann:
        body["ann_params"] = ann
    if q.filters is not None:
        body["filters"] = q.filters.to_wire()
    if q.vector is not None:
        body["vector"] = list(q.vector)
        body["rank_by"] = ["vector", "ANN", list(q.vector)]
    elif q.bm25 is not None:
        body["rank_by"] = [q.bm25.field, "BM25", q.bm25.text]
    return body


def workload_vectors(
    ctx: VerifyContext, params: Mapping[str, Any], num: int, seed: int
) -> list[list[float]]:
    """The recall sample of ``recall.queries: workload``: the vector queries of the planned
    workload sample, at most ``num`` of them (a ``seed``-ed choice, kept in file order)."""
    workload = planned_workload(ctx, params)
    vectors = [q for q in planned_sample(workload, params) if q.vector is not None]
    if len(vectors) > num:
        picked = sorted(random.Random(seed).sample(range(len(vectors)), num))
        vectors = [vectors[i] for i in picked]
    return [list(q.vector or ()) for q in vectors]
