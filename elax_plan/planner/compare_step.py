"""The comparison post-step (``verify.compare``) and the workload a recall gate samples
(``recall.queries: workload``), with every parameter their executors need.

Pure: from the ``PlanSpec`` and the workload ``live.workload`` read (its size, kinds and
digest; the queries themselves stay out of the plan, and apply re-reads the file and refuses
one whose digest differs). The step's detail names the workload's size, the sample, the
baseline and the SLOs, so a reviewer sees what will be compared with what.
"""

from __future__ import annotations

from typing import Any

from elax_plan.execution_plan import PostStep, plural
from elax_plan.spec import PlanSpec, display_url, format_duration, redact
from elax_plan.spec.model import CompareSpec
from elax_plan.spec.workload import LoadedWorkload


def workload_params(spec: PlanSpec, loaded: LoadedWorkload) -> dict[str, Any]:
    """What identifies the workload and its sample: apply re-reads exactly this."""
    v, w = spec.verify, loaded.workload
    return {
        "file": w.file,
        "digest": w.digest,
        "queries": len(w.queries),
        "sample": min(v.workload_sample, len(w.queries)),
        "seed": v.workload_seed,
        "kinds": w.kinds(),
        "vector_dims": spec.target.vector_dims,
    }


def _baseline_params(c: CompareSpec, loaded: LoadedWorkload) -> dict[str, Any]:
    b = c.baseline
    if b.results is not None and loaded.results is not None:
        return {"kind": "results", "file": loaded.results.file, "digest": loaded.results.digest}
    return {
        "kind": "elacsym",
        "url": redact(display_url(b.url or "")),
        "namespace": b.namespace,
        "ann_params": dict(b.ann_params.params),
        "api_key": b.api_key is not None,
    }


def _baseline_text(baseline: dict[str, Any]) -> str:
    if baseline["kind"] == "results":
        return f"the expected results in {baseline['file']}"
    ann = baseline["ann_params"]
    with_ann = f" with ann_params {ann}" if ann else ""
    return f"elacsym {baseline['url']} namespace {baseline['namespace']}{with_ann}"


def compare_step(spec: PlanSpec, loaded: LoadedWorkload | None) -> PostStep | None:
    """The comparison step, or None when the plan has no ``verify.compare``."""
    c = spec.verify.compare
    if c is None:
        return None
    if loaded is None:  # observe reads the workload of every plan that has one
        raise ValueError("verify.compare needs the workload live.workload read")
    workload = workload_params(spec, loaded)
    baseline = _baseline_params(c, loaded)
    n, total = workload["sample"], workload["queries"]
    kinds = ", ".join(f"{count} {kind}" for kind, count in workload["kinds"].items())
    sampled = f", a sample (seed {workload['seed']}) of {total:,}" if n < total else ""
    slos = f"mean overlap@k ≥ {c.min_overlap_at_k:g}" + "".join(
        f", {kind} ≥ {slo:g}" for kind, slo in c.min_overlap_by_kind.items()
    )
    detail = (
        f"{plural(n, 'workload query', 'workload queries')} from {workload['file']} "
        f"({kinds}{sampled}) on the target and on {_baseline_text(baseline)}: {slos}, and no "
        f"query with hits on the baseline only; {c.concurrency} in flight per side, timeout "
        f"{format_duration(spec.verify.timeout)} per request"
    )
    return PostStep(
        "compare",
        "compare",
        "Compare with the baseline",
        detail,
        params={
            "workload": workload,
            "baseline": baseline,
            "min_overlap_at_k": c.min_overlap_at_k,
            "min_overlap_by_kind": dict(c.min_overlap_by_kind),
            "metric": spec.target.distance_metric,
            "concurrency": c.concurrency,
            "timeout_s": spec.verify.timeout,
            "warm_up": None,
        },
    )
