"""Parse a write body (``POST /v2/namespaces/{ns}``) into a WAL batch, as the real server does.

Pure. Shape errors (numeric id, string in a vector, ``"upserts": null``)
raise ``ShapeError`` with a serde-like message (422); an empty id raises
``BadRequest`` (400, ``{"error":"id must not be empty"}``). Vector numbers are
narrowed to float32 exactly like the real code: values outside f32 range
become ±inf (hazard H4 — the WAL then holds ``null``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from elax_plan.emulator.layout import Delete, Operation, Upsert, WalBatch
from elax_plan.emulator.model import BadRequest, Document, ShapeError

_PREFIX = "Failed to deserialize the JSON body into the target type: "


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "sequence"
    return "map"


def _shape(path: str, value: Any, expected: str) -> ShapeError:
    return ShapeError(f"{_PREFIX}{path}: invalid type: {_type_name(value)}, expected {expected}")


def _vector(path: str, raw: Any, bools: bool) -> np.ndarray[Any, np.dtype[np.float32]]:
    if not isinstance(raw, list):
        raise _shape(path, raw, "a sequence")
    # Fast path: numpy tells us at C speed whether every element is a plain number.
    arr = np.asarray(raw) if raw else np.empty(0, dtype=np.float64)
    if arr.dtype.kind in "fi" and arr.ndim == 1:
        # numpy silently turns booleans among floats into 1.0/0.0; serde does not. The
        # caller knows from the raw body whether a boolean can be present at all.
        if bools and arr.dtype.kind == "f" and (True in raw or False in raw):
            for i, v in enumerate(raw):
                if isinstance(v, bool):
                    raise _shape(f"{path}[{i}]", v, "f32")
        return arr.astype(np.float32)
    for i, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _shape(f"{path}[{i}]", v, "f32")
    return np.array([float(v) for v in raw], dtype=np.float64).astype(np.float32)


def parse_write(namespace: str, body: Any, may_contain_bools: bool = True) -> WalBatch:
    """The WAL batch for a decoded write body; raises ``ShapeError`` or ``BadRequest``.

    ``may_contain_bools=False`` (the raw body has no ``true``/``false`` token) skips the
    per-element boolean scan of every vector, which is a third of the parse time.
    """
    if not isinstance(body, dict):
        raise ShapeError(f"{_PREFIX}invalid type: {_type_name(body)}, expected struct WriteBatch")
    upserts = body.get("upserts", [])
    if not isinstance(upserts, list):
        raise _shape("upserts", upserts, "a sequence")
    deletes = body.get("deletes")
    if deletes is not None and not isinstance(deletes, list):
        raise _shape("deletes", deletes, "a sequence")
    ops: list[Operation] = []
    # f64 → f32 narrowing turns out-of-range values into ±inf, as the real server does (H4).
    with np.errstate(over="ignore"):
        _upserts(upserts, ops, may_contain_bools)
    for i, doc_id in enumerate(deletes or ()):
        if not isinstance(doc_id, str):
            raise _shape(f"deletes[{i}]", doc_id, "a string")
        ops.append(Delete(doc_id))
    for op in ops:
        if isinstance(op, Upsert) and op.document.id == "":
            raise BadRequest("id must not be empty")
    return WalBatch(namespace, tuple(ops))


def _upserts(upserts: list[Any], ops: list[Operation], may_contain_bools: bool) -> None:
    for i, raw in enumerate(upserts):
        path = f"upserts[{i}]"
        if not isinstance(raw, dict):
            raise _shape(path, raw, "struct Document")
        if "id" not in raw:
            raise ShapeError(f"{_PREFIX}{path}: missing field `id`")
        doc_id = raw["id"]
        if not isinstance(doc_id, str):
            raise _shape(f"{path}.id", doc_id, "a string")
        vec = raw.get("vector")
        vector = None if vec is None else _vector(f"{path}.vector", vec, may_contain_bools)
        ops.append(Upsert(Document(doc_id, vector, raw.get("attributes"))))
