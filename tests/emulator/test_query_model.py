"""Parsing of query and recall bodies: defaults, rank_by forms and serde-like 422 messages."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from elax_plan.emulator.model import ShapeError
from elax_plan.emulator.query_model import (
    AnnParams,
    AnnRank,
    Bm25Rank,
    ExistsFilter,
    GroupBy,
    MatchFilter,
    QueryClause,
    RangeFilter,
    SetFilter,
    parse_query,
    parse_recall,
)

PREFIX = "Failed to deserialize the JSON body into the target type: "


def shape_error(body: Any) -> str:
    with pytest.raises(ShapeError) as info:
        parse_query(body)
    assert info.value.status == 422
    message = info.value.message
    assert message.startswith(PREFIX)
    return message[len(PREFIX) :]


def b64(values: list[float], dtype: str) -> str:
    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode()


# --- defaults and the happy path ----------------------------------------------------------


def test_defaults_for_a_plain_vector_query() -> None:
    """A body with only `vector` gets top_k 10, cosine, default ann_params and no filters."""
    req = parse_query({"vector": [1, 2.5]})
    assert req.top_k == 10
    assert req.metric == "cosine"
    assert req.ann_params == AnnParams()
    assert req.min_wal_sequence is None
    assert req.filters is None and req.filter_bitmap_ids is None and req.group_by is None
    assert req.queries == ()
    assert isinstance(req.rank_by, AnnRank)
    assert req.rank_by.field == "vector"
    assert req.rank_by.vector.dtype == np.float32
    assert req.rank_by.vector.tolist() == [1.0, 2.5]


def test_nulls_mean_defaults_where_serde_has_options() -> None:
    """`top_k`, `metric`, `rank_by`, `queries`, `min_wal_sequence` null are the defaults."""
    req = parse_query(
        {"top_k": None, "metric": None, "rank_by": None, "queries": None, "min_wal_sequence": None}
    )
    assert (req.top_k, req.metric, req.rank_by, req.queries) == (10, "cosine", None, ())
    assert req.min_wal_sequence is None


def test_all_fields_are_parsed() -> None:
    """Every documented query field lands in the typed request."""
    req = parse_query(
        {
            "rank_by": ["title", "BM25", "hello world"],
            "queries": [{"rank_by": ["v", "ANN", [0.5]], "top_k": 3}],
            "top_k": 0,
            "metric": "euclidean_squared",
            "min_wal_sequence": 2**64 - 1,
            "ann_params": {
                "use_ivf": False,
                "target_recall": 0.5,
                "nprobe": 4,
                "rerank_scale": 0,
                "rerank_mode": "fp32",
                "coarse_bits": 2,
                "rerank_bits": 4,
                "nprobe_ratio": 0.9,
            },
            "filters": {"op": "eq", "field": "lang", "value": "en"},
            "filter_bitmap_ids": ["a", "b"],
            "group_by": {"field": "lang"},
            "consistency": {"level": "eventual"},
            "include_attributes": ["x"],
        }
    )
    assert req.rank_by == Bm25Rank("title", "hello world")
    assert len(req.queries) == 1
    clause = req.queries[0]
    assert isinstance(clause, QueryClause) and clause.top_k == 3
    assert isinstance(clause.rank_by, AnnRank) and clause.rank_by.vector.tolist() == [0.5]
    assert req.top_k == 0
    assert req.metric == "euclidean_squared"
    assert req.min_wal_sequence == 2**64 - 1
    assert req.ann_params == AnnParams(False, 0.5, 4, 0, "fp32", 2, 4)
    assert req.filters == MatchFilter("eq", "lang", "en")
    assert req.filter_bitmap_ids == ("a", "b")
    assert req.group_by == GroupBy("lang", 10, 1)


def test_rank_by_takes_precedence_over_vector() -> None:
    """With both, `rank_by` is the vector clause; `vector` is still shape-checked."""
    req = parse_query({"vector": [1.0], "rank_by": ["emb", "ANN", [2.0]]})
    assert isinstance(req.rank_by, AnnRank)
    assert (req.rank_by.field, req.rank_by.vector.tolist()) == ("emb", [2.0])
    assert "vector[0]" in shape_error({"vector": ["x"], "rank_by": ["emb", "ANN", [2.0]]})


def test_vector_values_outside_f32_range_become_infinite() -> None:
    """Numbers are narrowed f64 → f32 like `as f32`: overflow is ±inf, not an error."""
    req = parse_query({"vector": [1e39, -1e39]})
    assert isinstance(req.rank_by, AnnRank)
    assert req.rank_by.vector.tolist() == [float("inf"), float("-inf")]


def test_base64_f32_rank_by() -> None:
    """`base64:f32:` decodes little-endian f32."""
    req = parse_query({"rank_by": ["v", "ANN", "base64:f32:" + b64([1.0, -2.5], "<f4")]})
    assert isinstance(req.rank_by, AnnRank)
    assert req.rank_by.vector.tolist() == [1.0, -2.5]


def test_base64_f16_rank_by() -> None:
    """`base64:f16:` decodes little-endian f16 into f32."""
    req = parse_query({"rank_by": ["v", "ANN", "base64:f16:" + b64([0.5, -1.0], "<f2")]})
    assert isinstance(req.rank_by, AnnRank)
    assert req.rank_by.vector.dtype == np.float32
    assert req.rank_by.vector.tolist() == [0.5, -1.0]


def test_base64_without_tag_picks_precision_by_length() -> None:
    """Untagged payloads: length divisible by 4 is f32, else by 2 is f16; prefix optional."""
    f32 = parse_query({"rank_by": ["v", "ANN", b64([3.0, 4.0], "<f4")]})
    f16 = parse_query({"rank_by": ["v", "ANN", "base64:" + b64([1.0, 2.0, 3.0], "<f2")]})
    assert isinstance(f32.rank_by, AnnRank) and f32.rank_by.vector.tolist() == [3.0, 4.0]
    assert isinstance(f16.rank_by, AnnRank) and f16.rank_by.vector.tolist() == [1.0, 2.0, 3.0]


def test_filters_of_every_leaf_op_parse() -> None:
    """eq/not_eq/in/not_in/gt/gte/lt/lte/exists parse; range values become floats."""
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"op": "eq", "field": "a", "value": None}, MatchFilter("eq", "a", None)),
        ({"op": "not_eq", "field": "a", "value": [1]}, MatchFilter("not_eq", "a", [1])),
        ({"op": "in", "field": "a", "values": [1, "x"]}, SetFilter("in", "a", (1, "x"))),
        ({"op": "not_in", "field": "a", "values": []}, SetFilter("not_in", "a", ())),
        ({"op": "gt", "field": "a", "value": 1}, RangeFilter("gt", "a", 1.0)),
        ({"op": "gte", "field": "a", "value": 1.5}, RangeFilter("gte", "a", 1.5)),
        ({"op": "lt", "field": "a", "value": -2}, RangeFilter("lt", "a", -2.0)),
        ({"op": "lte", "field": "a", "value": 0}, RangeFilter("lte", "a", 0.0)),
        ({"op": "exists", "field": "a.b", "extra": 1}, ExistsFilter("a.b")),
    ]
    for raw, expected in cases:
        assert parse_query({"vector": [1], "filters": raw}).filters == expected


def test_group_by_limits_are_read() -> None:
    """`limit` and `per_group_limit` override the defaults 10 and 1."""
    req = parse_query({"group_by": {"field": "c", "limit": 0, "per_group_limit": 3}})
    assert req.group_by == GroupBy("c", 0, 3)


# --- shape errors ---------------------------------------------------------------------------


def test_body_must_be_an_object() -> None:
    """A JSON array or scalar body is a shape error."""
    assert shape_error([]) == "invalid type: sequence, expected struct QueryPayload"
    assert shape_error("x") == 'invalid type: string "x", expected struct QueryPayload'
    assert shape_error(None) == "invalid type: null, expected struct QueryPayload"


def test_metric_spelling_is_strict() -> None:
    """`cosine_distance` (the design's name) and other spellings are unknown variants."""
    assert shape_error({"metric": "cosine_distance"}) == (
        "metric: unknown variant `cosine_distance`, expected `cosine` or `euclidean_squared`"
    )
    assert "unknown variant `Cosine`" in shape_error({"metric": "Cosine"})
    assert shape_error({"metric": 3}) == "metric: expected value"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-1, "top_k: invalid value: integer `-1`, expected usize"),
        (1.0, "top_k: invalid type: floating point `1.0`, expected usize"),
        (True, "top_k: invalid type: boolean `true`, expected usize"),
        ("10", 'top_k: invalid type: string "10", expected usize'),
    ],
)
def test_top_k_must_be_a_non_negative_integer(value: Any, expected: str) -> None:
    """Negative, float, bool or string top_k is a shape error."""
    assert shape_error({"top_k": value}) == expected


@pytest.mark.parametrize(
    ("vector", "expected"),
    [
        ([1, "2"], 'vector[1]: invalid type: string "2", expected f32'),
        ([True], "vector[0]: invalid type: boolean `true`, expected f32"),
        ([0.5, None], "vector[1]: invalid type: null, expected f32"),
        ("AAAA", 'vector: invalid type: string "AAAA", expected a sequence'),
        ({}, "vector: invalid type: map, expected a sequence"),
    ],
)
def test_top_level_vector_takes_plain_numbers_only(vector: Any, expected: str) -> None:
    """Strings, bools and nulls in `vector`, or a base64 string, are shape errors."""
    assert shape_error({"vector": vector}) == expected


@pytest.mark.parametrize(
    ("rank_by", "expected"),
    [
        (["v", "ANN"], "rank_by: rank_by must contain exactly three elements"),
        ([1, "ANN", [1]], "rank_by: rank_by[0] must be a string field name"),
        (["v", 2, [1]], "rank_by: rank_by[1] must be a string mode"),
        (["v", "KNN", [1]], "rank_by: unsupported rank_by mode: KNN"),
        (["v", "ann", [1]], "rank_by: unsupported rank_by mode: ann"),
        (["v", "ANN", [1, True]], "rank_by: rank_by ANN payload must contain numeric values"),
        (["v", "ANN", None], "rank_by: unsupported rank_by ANN payload: null"),
        (["v", "ANN", {"a": 1}], 'rank_by: unsupported rank_by ANN payload: {"a":1}'),
        (["t", "BM25", 5], "rank_by: rank_by BM25 payload must be a string"),
        ("v", 'rank_by: invalid type: string "v", expected a sequence'),
    ],
)
def test_malformed_rank_by(rank_by: Any, expected: str) -> None:
    """Wrong length, mode or payload type in rank_by is a shape error."""
    assert shape_error({"rank_by": rank_by}) == expected


def test_bad_base64_payloads() -> None:
    """Invalid base64, an odd byte count, or a length that does not fit the tag."""
    assert "invalid base64 payload" in shape_error({"rank_by": ["v", "ANN", "base64:!!!"]})
    odd = base64.b64encode(b"abc").decode()
    assert shape_error({"rank_by": ["v", "ANN", odd]}) == (
        "rank_by: failed to decode rank_by ANN base64 payload: "
        "base64 vector byte length 3 is not compatible with f16 or f32"
    )
    six = base64.b64encode(b"abcdef").decode()
    assert "divisible by 4 for f32 payload, got 6" in shape_error(
        {"rank_by": ["v", "ANN", "f32:" + six]}
    )


def test_queries_shape_errors() -> None:
    """`queries` must be an array of objects with a rank_by and an optional usize top_k."""
    assert shape_error({"queries": {}}) == "queries: invalid type: map, expected a sequence"
    assert shape_error({"queries": [1]}) == (
        "queries[0]: invalid type: integer `1`, expected struct QueryClause"
    )
    assert shape_error({"queries": [{"top_k": 1}]}) == "queries[0]: missing field `rank_by`"
    assert shape_error({"queries": [{"rank_by": ["v", "ANN", [1]], "top_k": -1}]}) == (
        "queries[0].top_k: invalid value: integer `-1`, expected usize"
    )
    assert shape_error({"queries": [{"rank_by": ["v", "X", 1]}]}) == (
        "queries[0].rank_by: unsupported rank_by mode: X"
    )


def test_min_wal_sequence_is_u64() -> None:
    """A negative or non-integer fence is a shape error."""
    assert shape_error({"min_wal_sequence": -1}) == (
        "min_wal_sequence: invalid value: integer `-1`, expected u64"
    )
    assert shape_error({"min_wal_sequence": "3"}) == (
        'min_wal_sequence: invalid type: string "3", expected u64'
    )


def test_ann_params_shape_errors() -> None:
    """Null ann_params, and wrong types or values of its keys, are shape errors."""
    assert shape_error({"ann_params": None}) == (
        "ann_params: invalid type: null, expected struct AnnParams"
    )
    assert shape_error({"ann_params": {"use_ivf": "yes"}}) == (
        'ann_params.use_ivf: invalid type: string "yes", expected a boolean'
    )
    assert shape_error({"ann_params": {"target_recall": "high"}}) == (
        'ann_params.target_recall: invalid type: string "high", expected f32'
    )
    assert shape_error({"ann_params": {"rerank_mode": "erq_y"}}) == (
        "ann_params.rerank_mode: unknown variant `erq_y`, expected `erq` or `fp32`"
    )
    assert shape_error({"ann_params": {"coarse_bits": 256}}) == (
        "ann_params.coarse_bits: invalid value: integer `256`, expected u8"
    )
    assert shape_error({"ann_params": {"rerank_scale": None}}) == (
        "ann_params.rerank_scale: invalid type: null, expected usize"
    )
    assert shape_error({"ann_params": {"nprobe": -2}}) == (
        "ann_params.nprobe: invalid value: integer `-2`, expected usize"
    )


def test_ann_params_nullable_keys_accept_null() -> None:
    """`nprobe`, `coarse_bits` and `rerank_bits` are options: null means unset."""
    req = parse_query({"ann_params": {"nprobe": None, "coarse_bits": None, "rerank_bits": None}})
    assert req.ann_params == AnnParams()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"op": "and", "filters": []}, "filters: invalid type: map, expected a sequence"),
        ({"op": "or", "0": {}}, "filters: invalid type: map, expected a sequence"),
        ({"op": "not", "expr": {"op": "exists", "field": "a"}}, "filters: missing field `op`"),
        (["And", [["price", "Lt", 100]]], "filters: unknown variant `And`, expected one of"),
        ({"field": "a", "value": 1}, "filters: missing field `op`"),
        ({"op": "Eq", "field": "a", "value": 1}, "filters: unknown variant `Eq`"),
        ({"op": "gt", "field": "a", "value": "10"}, 'invalid type: string "10", expected f64'),
        ({"op": "lt", "field": "a", "value": None}, "invalid type: unit value, expected f64"),
        ({"op": "eq", "field": "a"}, "filters: missing field `value`"),
        ({"op": "eq", "value": 1}, "filters: missing field `field`"),
        ({"op": "in", "field": "a", "values": "x"}, "expected a sequence"),
        ({"op": "exists", "field": 3}, "filters: invalid type: integer `3`, expected a string"),
        ("eq", 'filters: invalid type: string "eq", expected internally tagged enum'),
    ],
)
def test_filter_shape_errors(filters: Any, expected: str) -> None:
    """Combinators, the array syntax, non-numeric range values and bad leaves are 422."""
    assert expected in shape_error({"vector": [1], "filters": filters})


def test_filter_bitmap_ids_must_be_strings() -> None:
    """A non-string id in filter_bitmap_ids is a shape error."""
    assert shape_error({"filter_bitmap_ids": ["a", 2]}) == (
        "filter_bitmap_ids[1]: invalid type: integer `2`, expected a string"
    )


def test_group_by_shape_errors() -> None:
    """group_by needs a string `field`; `limit` is a usize and not nullable."""
    assert shape_error({"group_by": {}}) == "group_by: missing field `field`"
    assert shape_error({"group_by": {"field": "a", "limit": None}}) == (
        "group_by.limit: invalid type: null, expected usize"
    )
    assert shape_error({"group_by": "a"}) == (
        'group_by: invalid type: string "a", expected struct GroupBy'
    )


def test_first_error_in_body_order_wins() -> None:
    """Fields are checked in the order the body lists them, as serde reads them."""
    assert shape_error({"top_k": -1, "metric": "x"}).startswith("top_k:")
    assert shape_error({"metric": "x", "top_k": -1}).startswith("metric:")


# --- recall ---------------------------------------------------------------------------------


def test_recall_defaults() -> None:
    """An empty recall body: num 10, top_k 10, no queries, cosine, default ann_params."""
    req = parse_recall({"filters": {"op": "and"}})
    assert (req.num, req.top_k, req.queries, req.metric) == (10, 10, None, "cosine")
    assert req.ann_params == AnnParams()


def test_recall_fields() -> None:
    """num, top_k, explicit queries, metric and ann_params are read."""
    req = parse_recall(
        {
            "num": 0,
            "top_k": 3,
            "queries": [[1, 2], []],
            "metric": "euclidean_squared",
            "ann_params": {"rerank_mode": "fp32", "target_recall": 1.0},
        }
    )
    assert (req.num, req.top_k, req.metric) == (0, 3, "euclidean_squared")
    assert req.queries is not None and [q.tolist() for q in req.queries] == [[1.0, 2.0], []]
    assert req.ann_params.rerank_mode == "fp32" and req.ann_params.target_recall == 1.0


def test_recall_shape_errors() -> None:
    """Recall bodies reject non-objects, null num, negative top_k and non-numeric queries."""
    cases: list[tuple[Any, str]] = [
        ([], "invalid type: sequence, expected struct RecallPayload"),
        ({"num": None}, "num: invalid type: null, expected usize"),
        ({"top_k": -1}, "top_k: invalid value: integer `-1`, expected usize"),
        ({"queries": [[1, "a"]]}, 'queries[0][1]: invalid type: string "a", expected f32'),
        ({"queries": [None]}, "queries[0]: invalid type: null, expected a sequence"),
        ({"queries": ["base64:AAAA"]}, "queries[0]: invalid type: string"),
        ({"metric": "dot"}, "metric: unknown variant `dot`"),
    ]
    for body, expected in cases:
        with pytest.raises(ShapeError) as info:
            parse_recall(body)
        assert expected in info.value.message
