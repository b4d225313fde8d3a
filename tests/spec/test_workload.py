"""Workload files (``spec.workload``): query kinds, the seeded sample, matching results."""

from __future__ import annotations

import orjson

from elax_plan.spec.workload import parse_results, parse_workload


def lines(*objects: object) -> bytes:
    return b"".join(orjson.dumps(o) + b"\n" for o in objects)


def test_kinds_defaults_and_names() -> None:
    """filters make a query filtered; use_ivf false makes a vector query exact; top_k
    defaults to 10; an unnamed query is named by its line."""
    data = lines(
        {"vector": [1, 2]},
        {"vector": [1, 2], "ann_params": {"use_ivf": False}},
        {"name": "t", "bm25": {"field": "title", "text": "x"}, "top_k": 3},
        {"bm25": {"field": "title", "text": "x"}, "filters": {"op": "exists", "field": "a"}},
    )
    w = parse_workload(data, "q.ndjson")
    assert [q.kind for q in w.queries] == ["vector_ann", "vector_exact", "bm25", "filtered"]
    assert [q.name for q in w.queries] == ["line 1", "line 2", "t", "line 4"]
    assert [q.top_k for q in w.queries] == [10, 10, 3, 10]
    assert w.kinds() == {"vector_ann": 1, "vector_exact": 1, "bm25": 1, "filtered": 1}


def test_the_sample_is_seeded_and_in_file_order() -> None:
    """Above the sample size, the same seed picks the same queries, in file order."""
    w = parse_workload(lines(*({"vector": [float(i)]} for i in range(50))), "q.ndjson")
    a, b = w.sample(10, seed=4), w.sample(10, seed=4)
    assert a == b and len(a) == 10
    assert [q.line for q in a] == sorted(q.line for q in a)
    assert w.sample(10, seed=5) != a
    assert w.sample(100, seed=4) == w.queries


def test_results_match_by_name_or_line() -> None:
    """A result names its query or gives its line; integer ids become strings."""
    w = parse_workload(lines({"name": "a", "vector": [1.0]}, {"vector": [2.0]}), "q.ndjson")
    r = parse_results(
        lines({"line": 2, "ids": [7, 8]}, {"name": "a", "ids": ["x"], "scores": [0.5]}),
        "r.ndjson",
        w,
    )
    assert r.by_query_line[1].ids == ("x",) and r.by_query_line[1].scores == (0.5,)
    assert r.by_query_line[2].ids == ("7", "8") and r.by_query_line[2].scores is None
