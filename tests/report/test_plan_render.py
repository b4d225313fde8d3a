"""The plan comment's wording: paths a reviewer can use and filters with their values."""

from __future__ import annotations

import pytest

from elax_plan.planner.post_steps import filter_text
from elax_plan.report.plan_render import marker, shown_path
from elax_plan.spec import FilterSpec


@pytest.mark.parametrize(
    ("where", "base", "shown"),
    [
        ("file:///repo/plans/data/a.ndjson", "file:///repo", "plans/data/a.ndjson"),
        ("file:///repo/plans/data/a.ndjson", "file:///repo/", "plans/data/a.ndjson"),
        ("file:///repository/a.ndjson", "file:///repo", "/repository/a.ndjson"),
        ("file:///srv/elacsym", None, "/srv/elacsym"),
        ("/repo/plans/q.yaml", "file:///repo", "plans/q.yaml"),
        (
            "s3://bucket/exports/part-1.parquet",
            "file:///repo",
            "s3://bucket/exports/part-1.parquet",
        ),
        ("sftp://node/data", "file:///repo", "sftp://node/data"),
    ],
)
def test_local_paths_are_relative_to_the_plans_base_and_urls_as_written(
    where: str, base: str | None, shown: str
) -> None:
    assert shown_path(where, base) == shown


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (FilterSpec(op="eq", field="category", value="outerwear"), 'category = "outerwear"'),
        (FilterSpec(op="not_eq", field="n", value=3), "n ≠ 3"),
        (FilterSpec(op="gte", field="price", value=9.5), "price ≥ 9.5"),
        (FilterSpec(op="in", field="tag", values=("a", "b")), 'tag in ["a", "b"]'),
        (FilterSpec(op="not_in", field="n", values=(1,)), "n not in [1]"),
        (FilterSpec(op="exists", field="title"), "title exists"),
    ],
)
def test_a_filter_reads_with_its_value(spec: FilterSpec, text: str) -> None:
    assert filter_text(spec) == text


def test_the_marker_names_the_plan() -> None:
    assert marker("products-v3") == "<!-- elax-plan:products-v3 -->"


def test_a_last_run_without_a_summary_is_shown_without_one() -> None:
    """A run that stopped before its summary (no summary location) still renders."""
    from elax_plan.report.plan_render import _last_run

    doc = {
        "plan": {"base": "file:///repo"},
        "last_run": {"run_id": "r1", "verification": "pending", "summary": None},
    }
    assert _last_run(doc) == "r1, verification pending"
    doc["last_run"]["summary"] = "file:///repo/state/runs/r1/summary.md"  # type: ignore[index]
    assert _last_run(doc) == "r1, verification pending; summary at state/runs/r1/summary.md"
