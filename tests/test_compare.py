"""The comparison's metrics and verdict (``elax_plan.compare``), on hand-made answers."""

from __future__ import annotations

import pytest

from elax_plan.compare import QueryOutcome, Side, compare, overlap_at_k, rank_biased_overlap


def outcome(
    name: str, kind: str, target: list[str], baseline: list[str], k: int = 4
) -> QueryOutcome:
    return QueryOutcome(name, kind, 1, k, Side(tuple(target)), Side(tuple(baseline)))


def test_overlap_at_k_counts_shared_ids_in_the_top_k() -> None:
    """Shared ids over the larger side's top-k; order does not matter; both empty agree."""
    assert overlap_at_k(["a", "b", "c"], ["c", "b", "a"], 3) == 1.0
    assert overlap_at_k(["a", "b", "x", "y"], ["a", "b", "c", "d"], 4) == 0.5
    assert overlap_at_k(["a"], ["a", "b"], 10) == 0.5
    assert overlap_at_k(["a", "b", "c"], ["a", "b", "d"], 2) == 1.0
    assert overlap_at_k([], [], 5) == 1.0
    assert overlap_at_k([], ["a"], 5) == 0.0


def test_rank_biased_overlap_weighs_the_top() -> None:
    """1.0 for the same ranking, 0.0 for disjoint ones, and a swap at the top costs more
    than one at the bottom."""
    same = list("abcdefghij")
    assert rank_biased_overlap(same, same) == pytest.approx(1.0)
    assert rank_biased_overlap(list("abc"), list("xyz")) == 0.0
    top = rank_biased_overlap(same, ["b", "a", *same[2:]])
    bottom = rank_biased_overlap(same, [*same[:8], "j", "i"])
    assert 0 < top < bottom < 1
    assert rank_biased_overlap([], []) == 1.0


def test_verdict_per_kind_and_the_regressions_named() -> None:
    """Mean overlap per kind against its SLO; hits on the baseline only fail and are named;
    hits on the target only are named but do not fail; the worst queries come first."""
    outcomes = [
        outcome("ann-good", "vector_ann", list("abcd"), list("abcd")),
        outcome("ann-half", "vector_ann", list("abxy"), list("abcd")),
        outcome("exact", "vector_exact", list("abcd"), list("abcd")),
        outcome("title", "bm25", [], list("ab")),
        outcome("new", "filtered", list("ab"), []),
    ]
    figures = compare(outcomes, 0.5, {"vector_ann": 0.9, "vector_exact": 1.0})
    kinds = {k["kind"]: k for k in figures["kinds"]}
    assert kinds["vector_ann"]["mean_overlap"] == 0.75 and kinds["vector_ann"]["passed"] is False
    assert kinds["vector_exact"]["passed"] is True and kinds["bm25"]["passed"] is None
    assert kinds["bm25"]["zero_hits_target"] == 1 and kinds["bm25"]["zero_hits_baseline"] == 0
    assert figures["hits_baseline_only"] == ["title"]
    assert figures["hits_target_only"] == ["new"]
    assert [w["name"] for w in figures["worst"]] == ["title", "new", "ann-half"]
    assert figures["worst"][2]["target_top"] == list("abxy")
    assert not figures["passed"]
    assert (
        len(figures["misses"]) == 2 and "hits on the baseline only (title)" in figures["misses"][1]
    )
    dist = {d["bucket"]: d["queries"] for d in figures["distribution"]}
    assert dist["0.0–0.1"] == 2 and dist["0.5–0.6"] == 1 and dist["1.0"] == 2


def test_failed_queries_and_scores() -> None:
    """A query one side could not answer is not compared and fails the verdict; scores are
    summarised per side where given."""
    answered = QueryOutcome(
        "a", "vector_ann", 1, 2, Side(("x", "y"), (0.1, 0.3)), Side(("x", "y"), (0.9, 0.8))
    )
    failed = QueryOutcome("b", "bm25", 2, 2, None, Side(("x",)), "target: HTTP 422: bad")
    figures = compare([answered, failed], 0.5, {})
    assert figures["compared"] == 1 and figures["mean_overlap"] == 1.0
    assert figures["errors"] == [{"name": "b", "error": "target: HTTP 422: bad"}]
    assert (
        not figures["passed"] and "1 query failed (b: target: HTTP 422: bad)" in figures["misses"]
    )
    scores = figures["kinds"][0]["scores"]
    assert scores["target"]["p50"] == pytest.approx(0.2)
    assert scores["baseline"]["max"] == pytest.approx(0.9)
    assert figures["kinds"][1]["scores"] == {"target": None, "baseline": None}
