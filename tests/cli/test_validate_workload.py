"""`elax-plan validate` reads the query workload and the expected-results file: every bad line
is refused with FILE:LINE (text and JSON), a good pair passes, and the plan's own rules
(a comparison needs a workload, a baseline is a node or a results file) are located issues."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from elax_plan.cli._group import run
from tests.spec.helpers import minimal_with

GOOD = [
    {"name": "near", "vector": [0.1, 0.2, 0.3, 0.4]},
    {"bm25": {"field": "title", "text": "jacket"}, "top_k": 5},
]
BAD_LINES = [
    (b'{"vector": [1, 2', "not valid JSON"),
    (b"[1, 2, 3, 4]", "each line must be one JSON object"),
    (b'{"vector": [1, 2, 3]}', "vector has 3 numbers; target.vector_dims is 4"),
    (b'{"bm25": {"field": "title"}}', "'text' is a required property"),
    (
        b'{"vector": [1, 2, 3, 4], "bm25": {"field": "t", "text": "x"}}',
        "exactly one of vector and bm25",
    ),
    (b'{"vectr": [1, 2, 3, 4]}', "'vectr' was unexpected"),
    (b'{"name": "near", "vector": [1, 2, 3, 4]}', 'name "near" is already used on line 1'),
    (b'{"vector": [1, 2, 3, 4], "top_k": 0}', "top_k: 0 is less than the minimum of 1"),
    (b'{"vector": [1e39, 2, 3, 4]}', "vector[0] is outside the float32 range"),
    (b'{"vector": [1, 2, 3, 4], "filters": {"op": "eq", "field": "x"}}', "'value' is a required"),
]


def plan_with(tmp_path: Path, verify: str) -> Path:
    plan = tmp_path / "plan.yaml"
    text = minimal_with(verify).replace(
        "  distance_metric: cosine\n", "  distance_metric: cosine\n  vector_dims: 4\n"
    )
    plan.write_text(text)
    return plan


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_every_bad_workload_line_is_refused_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ten kinds of bad line after a good one (and a blank line, which is skipped): validate
    exits 1 naming FILE:LINE and the problem of each, and nothing else."""
    queries = tmp_path / "queries.ndjson"
    write(queries, [orjson.dumps(GOOD[0]), b"", *[line for line, _ in BAD_LINES]])
    plan = plan_with(tmp_path, f"verify:\n  workload: {queries}\n")
    assert run(["validate", str(plan)]) == 1
    err = capsys.readouterr().err
    assert f"the query workload has {len(BAD_LINES)} bad lines" in err
    for number, (_, message) in enumerate(BAD_LINES, start=3):
        line = next((x for x in err.splitlines() if f"queries.ndjson:{number}:" in x), "")
        assert message in line, (number, message, err)
    assert "queries.ndjson:1:" not in err and "queries.ndjson:2:" not in err
    assert "Traceback" not in err
    assert run(["validate", str(plan), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert not doc["valid"]
    assert [e["line"] for e in doc["errors"]] == list(range(3, 3 + len(BAD_LINES)))


def test_a_good_workload_and_results_file_pass_and_results_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Results matched by name and by line pass; a result for an unknown query, scores that do
    not pair with ids, and a query without a result are each refused."""
    queries = write(tmp_path / "queries.ndjson", [orjson.dumps(q) for q in GOOD])
    results = tmp_path / "expected.ndjson"
    verify = f"""verify:
  workload: {queries}
  compare:
    baseline: {{results: {results}}}
"""
    plan = plan_with(tmp_path, verify)
    write(results, [b'{"name": "near", "ids": [1, "b"]}', b'{"line": 2, "ids": []}'])
    assert run(["validate", str(plan)]) == 0
    assert "comparison with a baseline" in capsys.readouterr().out
    write(
        results,
        [
            b'{"name": "nearest", "ids": ["a"]}',
            b'{"line": 2, "ids": ["a", "b"], "scores": [0.5]}',
        ],
    )
    assert run(["validate", str(plan)]) == 1
    err = capsys.readouterr().err
    assert 'expected.ndjson:1:1: no query named "nearest"' in err
    assert "expected.ndjson:2:1: 1 scores for 2 ids" in err
    assert 'no result for the query "near"' in err


def test_plan_rules_of_the_comparison_are_located_issues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A comparison without a workload, a baseline with both url and results, and a literal
    baseline api_key are refused at their lines."""
    plan = plan_with(
        tmp_path,
        """verify:
  compare:
    baseline: {url: "http://old:8080", namespace: docs, results: r.ndjson, api_key: abc}
""",
    )
    assert run(["validate", str(plan)]) == 1
    err = capsys.readouterr().err
    assert "plan.yaml:14:3: verify.compare runs verify.workload's queries" in err
    assert "not both; remove url or results" in err
    assert "verify.compare.baseline.api_key is written in the plan file" in err
