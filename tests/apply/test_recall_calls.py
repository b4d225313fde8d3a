"""The recall sample's calls: each body as sent fits the byte budget, the split is greedy and
keeps every vector in order at float32 precision, and the answers combine weighted by
``evaluated``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from elax_plan.apply.recall_calls import (
    RecallCall,
    VectorTooLarge,
    combine,
    split_calls,
    vector_texts,
)

MIB2 = 2 * 1024 * 1024
FIELDS = {"top_k": 10, "metric": "cosine", "ann_params": {"rerank_mode": "fp32"}}


def _vectors(n: int, dims: int, seed: int = 3) -> list[list[float]]:
    # 17-digit doubles, as a source written by numpy would hold them.
    return np.random.default_rng(seed).standard_normal((n, dims)).tolist()  # type: ignore[no-any-return]


def _decoded(call: RecallCall) -> dict[str, object]:
    body = json.loads(call.body)
    assert isinstance(body, dict)
    return body


def test_2000_vectors_of_768_dims_split_into_calls_under_2_mib() -> None:
    vectors = _vectors(2000, 768)
    texts = vector_texts(vectors)
    calls = split_calls(texts, FIELDS, MIB2)
    assert len(calls) > 1
    sent: list[list[float]] = []
    for call in calls:
        body = _decoded(call)
        assert len(call.body) <= MIB2
        assert body["num"] == call.queries == len(body["queries"])  # type: ignore[arg-type]
        assert {k: body[k] for k in FIELDS} == FIELDS
        sent.extend(body["queries"])  # type: ignore[arg-type]
    # Every vector once, in sample order, each number the float32 the server narrows to.
    assert np.array_equal(np.asarray(sent, np.float32), np.asarray(vectors, np.float32))
    assert sum(c.queries for c in calls) == 2000


def test_the_fill_is_greedy_each_call_is_as_full_as_the_budget_allows() -> None:
    texts = vector_texts(_vectors(300, 768))
    calls = split_calls(texts, FIELDS, 256 * 1024)
    start = 0
    for call in calls[:-1]:
        nxt = texts[start + call.queries]
        # One more vector: a comma, its text, and a `num` that may gain a digit.
        grown = len(call.body) + 1 + len(nxt) + len(str(call.queries + 1)) - len(str(call.queries))
        assert grown > 256 * 1024
        start += call.queries


def test_a_budget_of_exactly_three_vectors_makes_calls_of_three() -> None:
    texts = [b"[1.5,2.5]"] * 7
    three = split_calls(texts[:3], FIELDS, 10_000)[0]
    calls = split_calls(texts, FIELDS, len(three.body))
    assert [c.queries for c in calls] == [3, 3, 1]
    assert calls[0].body == three.body


def test_float32_text_is_shorter_and_reads_back_as_the_same_float32() -> None:
    vector = [0.1, -1e-7, 3.4028234663852886e38, 1 / 3]
    [text] = vector_texts([vector])
    assert text == b"[0.1,-1e-7,3.4028235e+38,0.33333334]"
    assert np.array_equal(np.asarray(json.loads(text), np.float32), np.asarray(vector, np.float32))


def test_one_vector_that_does_not_fit_is_a_clear_error() -> None:
    texts = vector_texts(_vectors(2, 768))
    with pytest.raises(
        VectorTooLarge, match=r"more than target\.max_request_bytes \(1,024 bytes\)"
    ):
        split_calls(texts, FIELDS, 1024)
    short = [b"[1]"] * 2 + texts
    with pytest.raises(VectorTooLarge):  # one that starts a later call is refused too
        split_calls(short, FIELDS, len(_head_bytes()) + 40)


def _head_bytes() -> bytes:
    return split_calls([b"[1]"], FIELDS, 10_000)[0].body


def test_no_vectors_no_calls() -> None:
    assert split_calls([], FIELDS, MIB2) == []


def test_a_non_finite_vector_is_refused() -> None:
    with pytest.raises(ValueError, match="query vector 1 holds a NaN"):
        vector_texts([[1.0], [math.nan]])


# --- combining ------------------------------------------------------------------------------


def test_means_are_weighted_by_evaluated() -> None:
    answers = [
        {"avg_recall": 0.9, "avg_ann_count": 10.0, "avg_exhaustive_count": 10.0, "evaluated": 100},
        {"avg_recall": 0.6, "avg_ann_count": 7.0, "avg_exhaustive_count": 10.0, "evaluated": 50},
        # A call that evaluated nothing (all zeros, as the server answers) weighs nothing.
        {"avg_recall": 0.0, "avg_ann_count": 0.0, "avg_exhaustive_count": 0.0, "evaluated": 0},
    ]
    out = combine(answers)
    assert out["evaluated"] == 150
    assert out["avg_recall"] == pytest.approx((0.9 * 100 + 0.6 * 50) / 150)  # 0.8, not 0.5
    assert out["avg_ann_count"] == pytest.approx((10.0 * 100 + 7.0 * 50) / 150)
    assert out["avg_exhaustive_count"] == pytest.approx(10.0)


def test_one_answer_is_kept_as_sent_and_nothing_evaluated_is_zero() -> None:
    one = {"avg_recall": 0.1, "avg_ann_count": 3.0, "avg_exhaustive_count": 3.0, "evaluated": 3}
    assert combine([one]) == one
    zero = {"avg_recall": 0.0, "avg_ann_count": 0.0, "avg_exhaustive_count": 0.0, "evaluated": 0}
    assert combine([zero, zero]) == zero
    assert combine([]) == zero
