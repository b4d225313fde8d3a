"""Semantic rules the schema cannot express, each reported at the offending node."""

from __future__ import annotations

from pathlib import Path

import pytest

from elax_plan.spec import parse_plan
from tests.spec.helpers import MINIMAL_PLAN, issues_of, minimal_with


@pytest.mark.parametrize(
    ("extra", "position", "fragment"),
    [
        ("ingest:\n  chunk_bytes: 100\n", (13, 16), "below the minimum of 1KiB"),
        (
            "target_cap: x\n",
            (12, 1),
            'unknown key "target_cap"',
        ),
        ("ingest:\n  max_invalid_rows: 5\n", (13, 21), "only applies with on_invalid_row: skip"),
        (
            "ingest:\n  retry: {initial: 10s, max: 1s}\n",
            (13, 30),
            "retry.max is shorter than ingest.retry.initial",
        ),
        (
            "throttle:\n  poll_interval: 10s\n  stall_timeout: 5s\n",
            (14, 18),
            "stall_timeout is shorter than throttle.poll_interval",
        ),
        ("throttle:\n  poll_interval: 0s\n", (13, 18), "must be longer than 0"),
        ("preconditions:\n  store_budget: 0\n", (13, 17), "store_budget is 0"),
        (
            "source_extra: 1\n",
            (12, 1),
            'unknown key "source_extra"',
        ),
        (
            "verify:\n  recall:\n    ann_params: {use_ivf: false}\n",
            (14, 27),
            "use_ivf: false",
        ),
        (
            "verify:\n  recall:\n    ann_params: {coarse_bits: 4, rerank_bits: 2}\n",
            (14, 47),
            "rerank_bits (2) must be ≥ coarse_bits (4)",
        ),
        (
            "verify:\n  recall:\n    ann_params: {target_recall: 0.2, nprobe_ratio: 0.5}\n",
            (14, 38),
            "nprobe_ratio and target_recall are the same setting",
        ),
        (
            "verify:\n  smoke_queries:\n    - {name: a, sample_vectors: 1}\n"
            "    - {name: a, sample_vectors: 2}\n",
            (15, 14),
            'name "a" is already used',
        ),
        (
            "verify:\n  smoke_queries:\n    - {name: a, sample_vectors: 1, top_k: 2, min_hits: 3}\n",
            (14, 56),
            "min_hits (3) is above top_k (2)",
        ),
        (
            "verify:\n  smoke_queries:\n    - {name: a, sample_vectors: 1, expect_ids: [x]}\n",
            (14, 36),
            "expect_ids does not apply to sample_vectors",
        ),
        (
            "verify:\n  smoke_queries:\n    - name: a\n      bm25: {field: t, text: x}\n"
            "      filters: {op: exists, field: t, value: 1}\n",
            (16, 39),
            "op exists takes no value",
        ),
        (
            "verify:\n  smoke_queries:\n    - name: a\n      bm25: {field: t, text: x}\n"
            "      filters: {op: gt, field: price, value: cheap}\n",
            (16, 46),
            "must be a number, not text",
        ),
        ("summary:\n  path: s3://bucket/summary.md\n", (13, 9), "must be a local file path"),
    ],
)
def test_semantic_rule(
    extra: str, position: tuple[int, int], fragment: str, tmp_path: Path
) -> None:
    """Each rule produces one plain-words issue at the node that breaks it."""
    issues = issues_of(minimal_with(extra), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [position], issues
    assert fragment in issues[0][2]


def test_filter_in_with_value_names_both_problems(tmp_path: Path) -> None:
    """op: in with `value:` reports the missing `values` and the misnamed key."""
    text = minimal_with(
        "verify:\n  smoke_queries:\n    - name: a\n      bm25: {field: t, text: x}\n"
        "      filters: {op: in, field: t, value: [1]}\n"
    )
    issues = issues_of(text, tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(16, 7), (16, 35)]
    assert "op in takes values" in issues[1][2]


def test_state_equal_to_store_is_refused(tmp_path: Path) -> None:
    """state.uri may not be the store itself, however it is spelled."""
    text = MINIMAL_PLAN.replace("uri: ./state", f"uri: file://{tmp_path}/store/")
    [(line, column, message)] = issues_of(text, tmp_path)
    assert (line, column) == (11, 8)
    assert "is the target store itself" in message


def test_state_beside_store_is_fine(tmp_path: Path) -> None:
    """A state location next to the store (not inside namespaces/) is accepted."""
    text = MINIMAL_PLAN.replace("uri: ./state", "uri: ./store-state")
    assert parse_plan(text, base_dir=tmp_path).state.uri.endswith("/store-state")


def test_the_reserved_plan_name_is_refused_where_it_is_written(tmp_path: Path) -> None:
    """ "namespaces" would share <state.uri>/namespaces/ with the namespace records."""
    text = MINIMAL_PLAN.replace("name: demo", "name: namespaces")
    [(line, column, message)] = issues_of(text, tmp_path)
    assert (line, column) == (2, 7)
    assert message.startswith("name 'namespaces' is reserved: <state.uri>/namespaces/")


def test_s3_state_inside_s3_store_namespaces_is_refused(tmp_path: Path) -> None:
    """The namespaces/ rule holds for object storage URLs too."""
    text = MINIMAL_PLAN.replace("store: ./store", "store: s3://lake/elacsym").replace(
        "uri: ./state", "uri: s3://lake/elacsym/namespaces/state"
    )
    [(_, _, message)] = issues_of(text, tmp_path)
    assert "namespaces/ directory" in message
