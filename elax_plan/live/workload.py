"""Reads the plan's query workload (``verify.workload``) and the expected-results file of a
``results`` baseline, through fsspec, and parses them (``spec.workload``).

Read-only: it opens the two files a plan names and nothing else. ``validate`` and ``plan`` call
it so that every bad line is reported before anything runs; apply reads the files again at
verification and checks they are the ones the plan was computed from (their digests). A file
that cannot be read is a ``WorkloadInvalid`` naming it, without a traceback or credentials.
"""

from __future__ import annotations

from elax_plan.errors import WorkloadInvalid
from elax_plan.live._fs import describe, open_fs
from elax_plan.spec import PlanSpec, display_url
from elax_plan.spec.issues import PlanIssue
from elax_plan.spec.workload import LoadedWorkload, parse_results, parse_workload

__all__ = ["read_bytes", "read_workload"]


def read_bytes(url: str) -> bytes:
    """The whole file at ``url``; ``WorkloadInvalid`` (naming it) when it cannot be read."""
    shown = display_url(url)
    try:
        fs, path = open_fs(url, {})
        data = fs.cat_file(path)
    except Exception as exc:  # any fsspec backend failure: report it as this file's
        issue = PlanIssue(shown, f"cannot be read: {describe(exc)}; check the path or URL")
        raise WorkloadInvalid(shown, [issue]) from None
    return bytes(data)


def read_workload(spec: PlanSpec) -> LoadedWorkload | None:
    """The plan's workload and results, parsed; ``None`` when the plan has no workload."""
    v = spec.verify
    if v.workload is None:
        return None
    shown = display_url(v.workload)
    workload = parse_workload(read_bytes(v.workload), shown, vector_dims=spec.target.vector_dims)
    recall_from_workload = v.recall is not None and v.recall.queries == "workload"
    if recall_from_workload and not any(q.vector is not None for q in workload.queries):
        issue = PlanIssue(
            shown,
            "holds no vector query, but verify.recall.queries is workload; add vector "
            "queries or set recall.queries: source",
        )
        raise WorkloadInvalid(shown, [issue])
    results = None
    baseline = v.compare.baseline if v.compare is not None else None
    if baseline is not None and baseline.results is not None:
        results = parse_results(
            read_bytes(baseline.results), display_url(baseline.results), workload
        )
    return LoadedWorkload(workload, results)
