"""Request bodies as axum's ``Json`` extractor reads them: one JSON value, struct fields once.

Owns two rules of the real server that a plain ``orjson.loads`` would get wrong:

- trailing bytes: axum deserialises the first JSON value of the body and never
  checks what follows, so ``{"upserts":[]} garbage`` is accepted;
- duplicate keys: serde's derived structs refuse a field given twice (422
  ``duplicate field `x```), while unknown keys and keys inside free-form values
  (``attributes``) may repeat, the last one winning.

Checking for duplicates costs one regular-expression count over the body in
the common case; only a body that does hold a repeated key is parsed a second
time to find out where. Pure, no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeAlias

import orjson

from elax_plan.emulator.config import COMPAT_VERSIONS, Compat
from elax_plan.emulator.model import ShapeError
from elax_plan.emulator.serde import PREFIX

# The closing quote of every object key (and, rarely, a quote inside a string value).
_KEY_END = re.compile(rb'"[ \t\r\n]*:')
_DECODER = json.JSONDecoder()

# Which objects are serde structs, and their fields: a dict maps a field to the schema of its
# value; a 1-tuple is "a list of"; None is a free-form value (or a primitive).
Schema: TypeAlias = dict[str, Any] | tuple[Any] | None

_DOCUMENT: Schema = {"id": None, "vector": None, "attributes": None}
_FILTER: Schema = {"op": None, "field": None, "value": None, "values": None}
_CONDITION: Schema = {"min_wal_sequence": None, "max_wal_sequence": None}
_ANN_PARAMS: Schema = dict.fromkeys(
    (
        "use_ivf",
        "target_recall",
        "nprobe",
        "rerank_scale",
        "rerank_mode",
        "coarse_bits",
        "rerank_bits",
    )
)
_QUERY_COMMON: dict[str, Any] = {
    "vector": None,
    "top_k": None,
    "metric": None,
    "min_wal_sequence": None,
    "ann_params": _ANN_PARAMS,
    "group_by": {"field": None, "limit": None, "per_group_limit": None},
    "filters": _FILTER,
    "filter_bitmap_ids": None,
}
_RANKED = {"rank_by": None, "queries": ({"rank_by": None, "top_k": None},)}
SCHEMAS: dict[tuple[str, Compat], Schema] = {
    ("write", "72e6998"): {"upserts": (_DOCUMENT,), "deletes": None},
    ("write", "ac782e1"): {"upserts": (_DOCUMENT,), "deletes": None},
    ("write", "c152c2d"): {
        # `upserts` is an alias of `upsert_rows` (see _ALIASES).
        "upsert_rows": (_DOCUMENT,),
        "upserts": (_DOCUMENT,),
        "upsert_columns": ({"ids": None, "vector": None, "attributes": None},),
        "patch_rows": (_DOCUMENT,),
        "patch_columns": (
            {"ids": None, "vector": None, "attributes": None, "clear_attributes": None},
        ),
        "deletes": None,
        "delete_by_filter": (_FILTER,),
        "upsert_condition": _CONDITION,
        "patch_condition": _CONDITION,
        "delete_condition": _CONDITION,
    },
    ("query", "72e6998"): _QUERY_COMMON,
    ("query", "ac782e1"): {**_QUERY_COMMON, **_RANKED},
    ("query", "c152c2d"): {**_QUERY_COMMON, **_RANKED, "consistency": {"level": None}},
}
_RECALL: Schema = {
    "num": None,
    "top_k": None,
    "queries": None,
    "metric": None,
    "ann_params": _ANN_PARAMS,
}
for _compat in COMPAT_VERSIONS:
    SCHEMAS[("recall", _compat)] = _RECALL


# serde reports a field given twice under its own name, whichever alias each time.
_ALIASES = {"upserts": "upsert_rows"}


class JsonSyntaxError(ValueError):
    """The body is not JSON (axum: 400, plain text)."""


def decode_body(body: bytes) -> tuple[Any, bytes]:
    """The first JSON value of ``body`` and the bytes it spans; trailing bytes are ignored."""
    try:
        return orjson.loads(body), body
    except orjson.JSONDecodeError as exc:
        if not exc.msg.startswith("unexpected content after document"):
            raise JsonSyntaxError(str(exc)) from exc
        text = body.decode("utf-8", "surrogateescape")
        start = len(text) - len(text.lstrip(" \t\r\n"))
        try:
            _, end = _DECODER.raw_decode(text, start)
        except ValueError:
            raise JsonSyntaxError(str(exc)) from exc
        value = text[:end].encode("utf-8", "surrogateescape")
        try:
            return orjson.loads(value), value
        except orjson.JSONDecodeError as again:
            raise JsonSyntaxError(str(again)) from again


def check_duplicate_fields(raw: bytes, decoded: Any, schema: Schema) -> None:
    """Raise ``ShapeError`` (422) when a struct field of ``schema`` appears twice in ``raw``.

    Fast path: ``raw`` holds at least one key-closing quote per key it spells, and the
    decoded value holds at most one entry per distinct key, so equal counts prove that no
    key was repeated. Anything else is settled by parsing again with every pair kept.
    """
    if _key_marks(raw) == _entries(decoded):
        return
    pairs = json.loads(raw.decode("utf-8", "surrogateescape"), object_pairs_hook=_Pairs)
    aliases = _ALIASES if isinstance(schema, dict) and "upsert_rows" in schema else {}
    _walk(pairs, schema, "", aliases)


def _key_marks(raw: bytes) -> int:
    """Quotes followed by a colon: one per key, plus any inside string values. (A regex:
    quotes are rare in a body of vectors, and its literal scan skips to them.)"""
    return len(_KEY_END.findall(raw))


def _entries(value: Any) -> int:
    """Object entries in ``value``; a list that starts with a number (a vector) is taken to
    hold no objects, which can only undercount and so only sends a body to the slow path."""
    if type(value) is dict:
        n = len(value)
        for item in value.values():
            if type(item) is dict or type(item) is list:
                n += _entries(item)
        return n
    if type(value) is list:
        if value and type(value[0]) in (float, int):
            return 0
        return sum(_entries(item) for item in value if type(item) in (dict, list))
    return 0


class _Pairs(list[tuple[str, Any]]):
    """An object with its keys in order, repeats kept."""


def _walk(value: Any, schema: Schema, path: str, aliases: dict[str, str] | None = None) -> None:
    if schema is None:
        return
    if isinstance(schema, tuple):
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, schema[0], f"{path}[{i}]")
        return
    if not isinstance(value, _Pairs):
        return
    seen: set[str] = set()
    for key, item in value:
        if key not in schema:
            continue
        field = (aliases or {}).get(key, key)
        if field in seen:
            where = f"{path}: " if path else ""
            raise ShapeError(f"{PREFIX}{where}duplicate field `{field}`")
        seen.add(field)
        _walk(item, schema[key], f"{path}.{key}" if path else key)
