"""The comparison of two result lists (runbook step 5): per query and per kind, and the SLO.

Pure: ids and scores in, JSON-ready figures out, no I/O. Owns the metrics — overlap@k (the
share of the top-k ids both sides return), rank-biased overlap (RBO, extrapolated, p = 0.9),
hit counts on each side and the queries with hits on one side only, a score-distribution
summary per side — their aggregation per query kind (``vector_ann``, ``vector_exact``,
``bm25``, ``filtered``), the overlap distribution, the worst queries, and the verdict against
``min_overlap_at_k`` (overall mean) and ``min_overlap_by_kind`` (per-kind means). A query with
hits on the baseline only fails the comparison too: a filter or analyzer that matches nothing
on the target is the regression the runbook warns about. Running the queries is
``apply.compare_check``'s job; rendering, ``report``'s.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RBO_P = 0.9
WORST = 10
TOP_IDS = 10
KIND_ORDER = ("vector_ann", "vector_exact", "bm25", "filtered")


@dataclass(frozen=True, slots=True)
class Side:
    """One side's answer to one query: ids best first, scores when it gives them."""

    ids: tuple[str, ...]
    scores: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """One workload query and both sides' answers (``None``: that side failed, ``error`` says
    why)."""

    name: str
    kind: str
    line: int
    top_k: int
    target: Side | None
    baseline: Side | None
    error: str = ""


def overlap_at_k(target: Sequence[str], baseline: Sequence[str], k: int) -> float:
    """|top-k ∩ top-k| / the larger side's top-k size (1.0 when both are empty)."""
    a, b = list(target[:k]), list(baseline[:k])
    size = max(len(a), len(b))
    if size == 0:
        return 1.0
    return len(set(a) & set(b)) / size


def rank_biased_overlap(a: Sequence[str], b: Sequence[str], p: float = RBO_P) -> float:
    """Extrapolated RBO (Webber et al. 2010) of two rankings to the longer one's depth: 1.0 for
    the same ranking, 0.0 for disjoint ones; agreement near the top weighs most."""
    depth = max(len(a), len(b))
    if depth == 0:
        return 1.0
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    overlap = 0  # |a[:d] ∩ b[:d]|
    total = 0.0
    for d in range(1, depth + 1):
        if d <= len(a):
            overlap += a[d - 1] in seen_b
            seen_a.add(a[d - 1])
        if d <= len(b):
            overlap += b[d - 1] in seen_a  # also counts a[d - 1] == b[d - 1]
            seen_b.add(b[d - 1])
        total += (overlap / d) * p**d
    return min(1.0, (overlap / depth) * p**depth + (1 - p) / p * total)


def _round(x: float) -> float:
    return round(x, 4)


def _query_row(q: QueryOutcome) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": q.name,
        "kind": q.kind,
        "line": q.line,
        "top_k": q.top_k,
        "hits_target": len(q.target.ids) if q.target is not None else None,
        "hits_baseline": len(q.baseline.ids) if q.baseline is not None else None,
        "overlap": None,
        "rbo": None,
        "flag": None,
        "error": q.error or None,
    }
    if q.target is None or q.baseline is None:
        return row
    t, b = q.target.ids[: q.top_k], q.baseline.ids[: q.top_k]
    row["overlap"] = _round(overlap_at_k(t, b, q.top_k))
    row["rbo"] = _round(rank_biased_overlap(t, b))
    if t and not b:
        row["flag"] = "hits on target only"
    elif b and not t:
        row["flag"] = "hits on baseline only"
    return row


def _scores(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "min": _round(ordered[0]),
        "p50": _round(statistics.median(ordered)),
        "max": _round(ordered[-1]),
        "mean": _round(statistics.fmean(ordered)),
    }


def _kind_row(
    kind: str,
    rows: list[dict[str, Any]],
    outcomes: list[QueryOutcome],
    slo: float | None,
) -> dict[str, Any]:
    compared = [r for r in rows if r["overlap"] is not None]
    overlaps = [r["overlap"] for r in compared]
    mean = _round(statistics.fmean(overlaps)) if overlaps else None

    def side_scores(side: str) -> dict[str, Any] | None:
        values: list[float] = []
        for q in outcomes:
            answer: Side | None = getattr(q, side)
            if answer is not None and answer.scores is not None:
                values.extend(answer.scores[: q.top_k])
        return _scores(values)

    return {
        "kind": kind,
        "queries": len(rows),
        "compared": len(compared),
        "mean_overlap": mean,
        "min_overlap": min(overlaps) if overlaps else None,
        "mean_rbo": _round(statistics.fmean(r["rbo"] for r in compared)) if compared else None,
        "hits_target": sum(r["hits_target"] or 0 for r in rows),
        "hits_baseline": sum(r["hits_baseline"] or 0 for r in rows),
        "zero_hits_target": sum(1 for r in rows if r["hits_target"] == 0),
        "zero_hits_baseline": sum(1 for r in rows if r["hits_baseline"] == 0),
        "min_overlap_at_k": slo,
        "passed": None if slo is None else (mean is not None and mean >= slo),
        "scores": {"target": side_scores("target"), "baseline": side_scores("baseline")},
    }


def distribution(overlaps: Sequence[float]) -> list[dict[str, Any]]:
    """How many queries fall in each tenth of [0, 1), plus exactly 1.0."""
    buckets = [0] * 11
    for x in overlaps:
        buckets[10 if x >= 1.0 else min(9, int(x * 10))] += 1
    labels = [f"{i / 10:.1f}–{(i + 1) / 10:.1f}" for i in range(10)] + ["1.0"]
    return [{"bucket": label, "queries": n} for label, n in zip(labels, buckets, strict=True)]


def _top(side: Side | None, k: int) -> list[str] | None:
    return list(side.ids[: min(k, TOP_IDS)]) if side is not None else None


def compare(
    outcomes: Sequence[QueryOutcome],
    min_overlap_at_k: float,
    min_overlap_by_kind: Mapping[str, float],
) -> dict[str, Any]:
    """Every figure of the comparison and its verdict (``passed``, ``misses``)."""
    rows = [_query_row(q) for q in outcomes]
    kinds = [k for k in KIND_ORDER if any(q.kind == k for q in outcomes)]
    kind_rows = [
        _kind_row(
            k,
            [r for r in rows if r["kind"] == k],
            [q for q in outcomes if q.kind == k],
            min_overlap_by_kind.get(k),
        )
        for k in kinds
    ]
    overlaps = [r["overlap"] for r in rows if r["overlap"] is not None]
    mean = _round(statistics.fmean(overlaps)) if overlaps else None
    rbos = [r["rbo"] for r in rows if r["rbo"] is not None]
    by_name = {(q.line, q.name): q for q in outcomes}
    ranked = sorted(
        (r for r in rows if r["overlap"] is not None), key=lambda r: (r["overlap"], r["rbo"])
    )
    worst = [
        {
            **{k: r[k] for k in ("name", "kind", "line", "overlap", "rbo", "flag")},
            "hits_target": r["hits_target"],
            "hits_baseline": r["hits_baseline"],
            "target_top": _top(by_name[(r["line"], r["name"])].target, r["top_k"]),
            "baseline_top": _top(by_name[(r["line"], r["name"])].baseline, r["top_k"]),
        }
        for r in ranked[:WORST]
        if r["overlap"] < 1.0
    ]
    baseline_only = [r["name"] for r in rows if r["flag"] == "hits on baseline only"]
    target_only = [r["name"] for r in rows if r["flag"] == "hits on target only"]
    errors = [{"name": r["name"], "error": r["error"]} for r in rows if r["error"]]
    misses = _misses(mean, min_overlap_at_k, kind_rows, baseline_only, errors, len(overlaps))
    return {
        "queries": len(rows),
        "compared": len(overlaps),
        "mean_overlap": mean,
        "mean_rbo": _round(statistics.fmean(rbos)) if rbos else None,
        "min_overlap_at_k": min_overlap_at_k,
        "min_overlap_by_kind": dict(min_overlap_by_kind),
        "kinds": kind_rows,
        "hits_baseline_only": baseline_only,
        "hits_target_only": target_only,
        "errors": errors,
        "worst": worst,
        "distribution": distribution(overlaps),
        "per_query": rows,
        "passed": not misses,
        "misses": misses,
    }


def _misses(
    mean: float | None,
    slo: float,
    kind_rows: list[dict[str, Any]],
    baseline_only: list[str],
    errors: list[dict[str, Any]],
    compared: int,
) -> list[str]:
    """Why the comparison fails, one sentence each (empty: it passes)."""
    misses: list[str] = []
    if compared == 0:
        misses.append("no query could be compared")
    elif mean is not None and mean < slo:
        misses.append(f"mean overlap@k {mean:.4f} is below min_overlap_at_k {slo}")
    for k in kind_rows:
        if k["passed"] is False:
            got = "no query compared" if k["mean_overlap"] is None else f"{k['mean_overlap']:.4f}"
            misses.append(f"{k['kind']}: mean overlap@k {got} is below {k['min_overlap_at_k']}")
    if baseline_only:
        shown = ", ".join(baseline_only[:5]) + ("…" if len(baseline_only) > 5 else "")
        misses.append(
            f"{len(baseline_only)} quer{'y has' if len(baseline_only) == 1 else 'ies have'} "
            f"hits on the baseline only ({shown})"
        )
    if errors:
        misses.append(
            f"{len(errors)} quer{'y' if len(errors) == 1 else 'ies'} failed ({errors[0]['name']}: "
            f"{errors[0]['error']})"
        )
    return misses
