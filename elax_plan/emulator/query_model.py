"""Parse decoded query and recall bodies into frozen typed requests, as the real server does.

Owns the request shapes of ``POST /v2/namespaces/{ns}/query`` and
``POST /v1/namespaces/{ns}/_debug/recall`` (CONTRACT §3.1-§3.3, §3.6, §3.10):
defaults, the ``rank_by`` forms (including base64 query vectors) and the
serde-like ``ShapeError`` (422) messages for wrong shapes. Fields are checked in
the order the body lists them, so the first error reported is the one serde
would hit first. Unknown keys are ignored, like serde without
``deny_unknown_fields``.

Must not search, touch documents or do I/O: what a request *means* belongs to
``search.py``; errors that need the data (bit validation, range filter on a
string, empty query vector) are raised there as ``ServerError`` (500).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np

from elax_plan.emulator.model import ShapeError, Vector
from elax_plan.emulator.serde import (
    U64_MAX,
    boolean,
    f32,
    f32_array,
    invalid_type,
    is_number,
    join_path,
    narrow_f32,
    opt_u8,
    opt_usize,
    shape_error,
    string,
    unsigned,
    usize,
    variant,
)

__all__ = [
    "AnnParams",
    "AnnRank",
    "Bm25Rank",
    "ExistsFilter",
    "Filter",
    "GroupBy",
    "MatchFilter",
    "Metric",
    "QueryClause",
    "QueryRequest",
    "RangeFilter",
    "RankBy",
    "RecallRequest",
    "RerankMode",
    "SetFilter",
    "parse_filter",
    "parse_query",
    "parse_recall",
]

Metric: TypeAlias = Literal["cosine", "euclidean_squared"]
RerankMode: TypeAlias = Literal["erq", "fp32"]
MatchOp: TypeAlias = Literal["eq", "not_eq"]
SetOp: TypeAlias = Literal["in", "not_in"]
RangeOp: TypeAlias = Literal["gt", "gte", "lt", "lte"]

_RANGE_OPS: dict[str, RangeOp] = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}
_FILTER_OPS = (
    "and",
    "or",
    "not",
    "eq",
    "not_eq",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
)


# --- request types ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnnParams:
    """ANN tuning (CONTRACT §3.3); ``None`` bits mean the defaults (coarse 1, rerank 8)."""

    use_ivf: bool = True
    target_recall: float = 0.1
    nprobe: int | None = None
    rerank_scale: int = 5
    rerank_mode: RerankMode = "erq"
    coarse_bits: int | None = None
    rerank_bits: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class AnnRank:
    """``[field, "ANN", vector]``: the field name is not checked (one vector per document)."""

    field: str
    vector: Vector


@dataclass(frozen=True, slots=True)
class Bm25Rank:
    """``[field, "BM25", query text]``."""

    field: str
    query: str


RankBy: TypeAlias = AnnRank | Bm25Rank


@dataclass(frozen=True, slots=True)
class QueryClause:
    """One entry of ``queries``: a rank_by clause with its own optional ``top_k``."""

    rank_by: RankBy
    top_k: int | None = None


@dataclass(frozen=True, slots=True)
class MatchFilter:
    """``eq`` / ``not_eq``: exact JSON equality (``1`` ≠ ``1.0`` ≠ ``true``)."""

    op: MatchOp
    field: str
    value: Any


@dataclass(frozen=True, slots=True)
class SetFilter:
    """``in`` / ``not_in``: exact JSON equality against any of ``values``."""

    op: SetOp
    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class RangeFilter:
    """``gt`` / ``gte`` / ``lt`` / ``lte`` against a number (f64)."""

    op: RangeOp
    field: str
    value: float


@dataclass(frozen=True, slots=True)
class ExistsFilter:
    """``exists``: the dot path resolves (a JSON ``null`` value counts as existing)."""

    field: str


Filter: TypeAlias = MatchFilter | SetFilter | RangeFilter | ExistsFilter


@dataclass(frozen=True, slots=True)
class GroupBy:
    """``group_by`` (CONTRACT §3.7)."""

    field: str
    limit: int = 10
    per_group_limit: int = 1


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """A parsed query; ``rank_by`` already holds the top-level ``vector`` shorthand."""

    top_k: int = 10
    rank_by: RankBy | None = None
    queries: tuple[QueryClause, ...] = ()
    metric: Metric = "cosine"
    min_wal_sequence: int | None = None
    ann_params: AnnParams = AnnParams()
    filters: Filter | None = None
    filter_bitmap_ids: tuple[str, ...] | None = None
    group_by: GroupBy | None = None


@dataclass(frozen=True, slots=True)
class RecallRequest:
    """A parsed ``_debug/recall`` request (CONTRACT §3.10); ``num``/``top_k`` not yet clamped."""

    num: int = 10
    top_k: int = 10
    queries: tuple[Vector, ...] | None = None
    metric: Metric = "cosine"
    ann_params: AnnParams = AnnParams()


def _metric(path: str, value: Any) -> Metric:
    if value is None:
        return "cosine"
    if variant(path, value, ("cosine", "euclidean_squared")) == "cosine":
        return "cosine"
    return "euclidean_squared"


# --- rank_by --------------------------------------------------------------------------------


def _decode_base64_vector(text: str) -> Vector:
    payload = text.removeprefix("base64:")
    precision: str | None = None
    if payload.startswith("f16:"):
        precision, payload = "f16", payload[4:]
    elif payload.startswith("f32:"):
        precision, payload = "f32", payload[4:]
    try:
        raw = base64.b64decode(payload.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError(f"invalid base64 payload: {exc}") from exc
    if precision is None:
        if not raw or len(raw) % 4 == 0:
            precision = "f32"
        elif len(raw) % 2 == 0:
            precision = "f16"
        else:
            raise ValueError(
                f"base64 vector byte length {len(raw)} is not compatible with f16 or f32"
            )
    width = 2 if precision == "f16" else 4
    if len(raw) % width:
        raise ValueError(
            f"expected byte length divisible by {width} for {precision} payload, got {len(raw)}"
        )
    out = np.frombuffer(raw, dtype="<f2" if width == 2 else "<f4").astype(np.float32)
    out.flags.writeable = False
    return out


def _rank_by(path: str, raw: Any) -> RankBy:
    if not isinstance(raw, list):
        raise invalid_type(path, raw, "a sequence")
    if len(raw) != 3:
        raise shape_error(path, "rank_by must contain exactly three elements")
    field, mode, payload = raw
    if not isinstance(field, str):
        raise shape_error(path, "rank_by[0] must be a string field name")
    if not isinstance(mode, str):
        raise shape_error(path, "rank_by[1] must be a string mode")
    if mode == "ANN":
        if isinstance(payload, list):
            if not all(is_number(v) for v in payload):
                raise shape_error(path, "rank_by ANN payload must contain numeric values")
            return AnnRank(field, narrow_f32(payload))
        if isinstance(payload, str):
            try:
                return AnnRank(field, _decode_base64_vector(payload))
            except ValueError as exc:
                raise shape_error(
                    path, f"failed to decode rank_by ANN base64 payload: {exc}"
                ) from exc
        shown = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        raise shape_error(path, f"unsupported rank_by ANN payload: {shown}")
    if mode == "BM25":
        if not isinstance(payload, str):
            raise shape_error(path, "rank_by BM25 payload must be a string")
        return Bm25Rank(field, payload)
    raise shape_error(path, f"unsupported rank_by mode: {mode}")


def _clause(path: str, raw: Any) -> QueryClause:
    if not isinstance(raw, dict):
        raise invalid_type(path, raw, "struct QueryClause")
    rank: RankBy | None = None
    top_k: int | None = None
    for key, value in raw.items():
        if key == "rank_by":
            rank = _rank_by(join_path(path, key), value)
        elif key == "top_k":
            top_k = opt_usize(join_path(path, key), value)
    if rank is None:
        raise shape_error(path, "missing field `rank_by`")
    return QueryClause(rank, top_k)


# --- ann_params, group_by, filters ----------------------------------------------------------


def _ann_params(path: str, raw: Any) -> AnnParams:
    if not isinstance(raw, dict):
        raise invalid_type(path, raw, "struct AnnParams")
    use_ivf, target_recall, nprobe, rerank_scale = True, 0.1, None, 5
    rerank_mode: RerankMode = "erq"
    coarse_bits: int | None = None
    rerank_bits: int | None = None
    for key, value in raw.items():
        sub = join_path(path, key)
        if key == "use_ivf":
            use_ivf = boolean(sub, value)
        elif key == "target_recall":
            target_recall = f32(sub, value)
        elif key == "nprobe":
            nprobe = opt_usize(sub, value)
        elif key == "rerank_scale":
            rerank_scale = usize(sub, value)
        elif key == "rerank_mode":
            rerank_mode = "erq" if variant(sub, value, ("erq", "fp32")) == "erq" else "fp32"
        elif key == "coarse_bits":
            coarse_bits = opt_u8(sub, value)
        elif key == "rerank_bits":
            rerank_bits = opt_u8(sub, value)
    return AnnParams(
        use_ivf, target_recall, nprobe, rerank_scale, rerank_mode, coarse_bits, rerank_bits
    )


def _group_by(path: str, raw: Any) -> GroupBy:
    if not isinstance(raw, dict):
        raise invalid_type(path, raw, "struct GroupBy")
    field: str | None = None
    limit, per_group_limit = 10, 1
    for key, value in raw.items():
        sub = join_path(path, key)
        if key == "field":
            field = string(sub, value)
        elif key == "limit":
            limit = usize(sub, value)
        elif key == "per_group_limit":
            per_group_limit = usize(sub, value)
    if field is None:
        raise shape_error(path, "missing field `field`")
    return GroupBy(field, limit, per_group_limit)


def _filter(path: str, raw: Any) -> Filter:
    """An internally tagged ``FilterExpr``; serde buffers it, so null reads as "unit value"."""
    if isinstance(raw, list):
        # serde reads the tag from the first element of a sequence.
        if raw and isinstance(raw[0], str) and raw[0] not in _FILTER_OPS:
            raise _unknown_op(path, raw[0])
        raise invalid_type(path, raw, "internally tagged enum FilterExpr", content=True)
    if not isinstance(raw, dict):
        raise invalid_type(path, raw, "internally tagged enum FilterExpr", content=True)
    if "op" not in raw:
        raise shape_error(path, "missing field `op`")
    op = raw["op"]
    if not isinstance(op, str):
        raise invalid_type(path, op, "variant identifier", content=True)
    if op not in _FILTER_OPS:
        raise _unknown_op(path, op)
    if op in ("and", "or"):
        # `And(Vec<FilterExpr>)` must come from the remaining map: never expressible in JSON.
        raise shape_error(path, "invalid type: map, expected a sequence")
    if op == "not":
        # `Not(Box<FilterExpr>)` reads the remaining map, which no longer holds `op`.
        raise shape_error(path, "missing field `op`")
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "field":
            if not isinstance(value, str):
                raise invalid_type(path, value, "a string", content=True)
            fields[key] = value
        elif key == "value" and op in _RANGE_OPS:
            if not is_number(value):
                raise invalid_type(path, value, "f64", content=True)
            fields[key] = float(value)
        elif key == "values" and op in ("in", "not_in"):
            if not isinstance(value, list):
                raise invalid_type(path, value, "a sequence", content=True)
            fields[key] = tuple(value)
        elif key == "value":
            fields[key] = value
    needed = {"exists": ("field",), "in": ("field", "values"), "not_in": ("field", "values")}
    for name in needed.get(op, ("field", "value")):
        if name not in fields:
            raise shape_error(path, f"missing field `{name}`")
    if op == "exists":
        return ExistsFilter(fields["field"])
    if op in ("in", "not_in"):
        return SetFilter("in" if op == "in" else "not_in", fields["field"], fields["values"])
    if op in ("eq", "not_eq"):
        return MatchFilter("eq" if op == "eq" else "not_eq", fields["field"], fields["value"])
    return RangeFilter(_RANGE_OPS[op], fields["field"], fields["value"])


def parse_filter(path: str, raw: Any) -> Filter:
    """One ``FilterExpr`` (queries, PR #11 ``delete_by_filter``, WAL replay); ``ShapeError``."""
    return _filter(path, raw)


def _unknown_op(path: str, op: str) -> ShapeError:
    expected = ", ".join(f"`{v}`" for v in _FILTER_OPS)
    return shape_error(path, f"unknown variant `{op}`, expected one of {expected}")


def _string_list(path: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise invalid_type(path, raw, "a sequence")
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise invalid_type(f"{path}[{i}]", item, "a string")
    return tuple(raw)


# --- entry points ---------------------------------------------------------------------------


def parse_query(body: Any, compat: str = "ac782e1") -> QueryRequest:
    """The ``QueryRequest`` for a decoded query body; raises ``ShapeError`` (422).

    ``compat`` is the elacsym tip to read it as (CONTRACT §3.1): 72e6998 has no
    ``rank_by``/``queries`` (ignored as unknown keys) and requires ``vector``;
    c152c2d adds ``consistency`` (``eventual`` drops ``min_wal_sequence``).
    """
    if not isinstance(body, dict):
        raise invalid_type("", body, "struct QueryPayload")
    values: dict[str, Any] = {}
    readers: dict[str, Callable[[str, Any], Any]] = {
        "vector": lambda p, v: None if v is None else f32_array(p, v),
        "rank_by": lambda p, v: None if v is None else _rank_by(p, v),
        "queries": lambda p, v: None if v is None else _clauses(p, v),
        "top_k": opt_usize,
        "metric": _metric,
        "min_wal_sequence": lambda p, v: None if v is None else unsigned(p, v, "u64", U64_MAX),
        "ann_params": _ann_params,
        "group_by": lambda p, v: None if v is None else _group_by(p, v),
        "filters": lambda p, v: None if v is None else _filter(p, v),
        "filter_bitmap_ids": lambda p, v: None if v is None else _string_list(p, v),
    }
    if compat == "72e6998":
        del readers["rank_by"], readers["queries"]
        # `vector: Vec<f32>` is required and not an Option: null is a type error.
        readers["vector"] = f32_array
    elif compat == "c152c2d":
        readers["consistency"] = lambda p, v: None if v is None else _consistency(p, v)
    for key, value in body.items():
        reader = readers.get(key)
        if reader is not None:
            values[key] = reader(key, value)
    if compat == "72e6998" and "vector" not in values:
        raise shape_error("", "missing field `vector`")
    rank: RankBy | None = values.get("rank_by")
    vector: Vector | None = values.get("vector")
    if rank is None and vector is not None:
        rank = AnnRank("vector", vector)
    top_k = values.get("top_k")
    min_wal_sequence = values.get("min_wal_sequence")
    if values.get("consistency") == "eventual":
        min_wal_sequence = None
    return QueryRequest(
        top_k=10 if top_k is None else top_k,
        rank_by=rank,
        queries=values.get("queries") or (),
        metric=values.get("metric", "cosine"),
        min_wal_sequence=min_wal_sequence,
        ann_params=values.get("ann_params", AnnParams()),
        filters=values.get("filters"),
        filter_bitmap_ids=values.get("filter_bitmap_ids"),
        group_by=values.get("group_by"),
    )


def _consistency(path: str, raw: Any) -> str:
    """PR #11's ``{"level": "strong" | "eventual"}``; ``level`` defaults to strong."""
    if not isinstance(raw, dict):
        raise invalid_type(path, raw, "struct ConsistencyPayload")
    level = "strong"
    for key, value in raw.items():
        if key == "level":
            level = variant(join_path(path, key), value, ("strong", "eventual"))
    return level


def _clauses(path: str, raw: Any) -> tuple[QueryClause, ...]:
    if not isinstance(raw, list):
        raise invalid_type(path, raw, "a sequence")
    return tuple(_clause(f"{path}[{i}]", item) for i, item in enumerate(raw))


def parse_recall(body: Any) -> RecallRequest:
    """The ``RecallRequest`` for a decoded recall body; raises ``ShapeError`` (422)."""
    if not isinstance(body, dict):
        raise invalid_type("", body, "struct RecallPayload")
    num, top_k = 10, 10
    queries: tuple[Vector, ...] | None = None
    metric: Metric = "cosine"
    ann = AnnParams()
    for key, value in body.items():
        if key == "num":
            num = usize(key, value)
        elif key == "top_k":
            top_k = usize(key, value)
        elif key == "queries":
            if value is None:
                queries = None
            elif not isinstance(value, list):
                raise invalid_type(key, value, "a sequence")
            else:
                queries = tuple(f32_array(f"{key}[{i}]", q) for i, q in enumerate(value))
        elif key == "metric":
            metric = _metric(key, value)
        elif key == "ann_params":
            ann = _ann_params(key, value)
    return RecallRequest(num, top_k, queries, metric, ann)
