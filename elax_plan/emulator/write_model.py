"""Parse a write body (``POST /v2/namespaces/{ns}``) into a WAL batch, as the real server does.

Pure. Shape errors (numeric id, string in a vector, ``"upserts": null``)
raise ``ShapeError`` with a serde-like message (422); an empty id raises
``BadRequest`` (400, ``{"error":"id must not be empty"}``). Vector numbers are
narrowed to float32 exactly like the real code: values outside f32 range
become ±inf (hazard H4 — the WAL then holds ``null``).

``parse_write_request`` answers for a compat version (CONTRACT §2): 72e6998
and ac782e1 take ``{upserts, deletes}`` and ignore everything else; c152c2d
(PR #11, §2.7) rejects ``deletes: null``, takes ``upsert_rows`` (alias
``upserts``), ``upsert_columns``, ``patch_rows``, ``patch_columns``,
``delete_by_filter`` and the three ``*_condition`` objects, and refuses an
empty batch (500, after the namespace is loaded).

PR #11 reads ``patch_rows[].vector`` and ``.attributes`` as ``Option<Value>``,
so a JSON ``null`` there means "absent" (serde maps null to ``None``), not
"remove": removal needs ``patch_columns`` (a null vector entry, or
``clear_attributes``) or a null value inside the attributes object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from elax_plan.emulator.config import Compat
from elax_plan.emulator.layout import (
    REMOVE_VECTOR,
    AttributesPatch,
    Delete,
    DeleteByFilter,
    Operation,
    Patch,
    Upsert,
    VectorChange,
    WalBatch,
)
from elax_plan.emulator.model import BadRequest, Document, PreconditionFailed, ShapeError, Vector
from elax_plan.emulator.query_model import parse_filter
from elax_plan.emulator.serde import PREFIX, unexpected


def _shape(path: str, value: Any, expected: str) -> ShapeError:
    return ShapeError(f"{PREFIX}{path}: invalid type: {unexpected(value)}, expected {expected}")


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
        raise ShapeError(f"{PREFIX}invalid type: {unexpected(body)}, expected struct WriteBatch")
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


def _upserts(
    upserts: list[Any], ops: list[Operation], may_contain_bools: bool, key: str = "upserts"
) -> None:
    for i, raw in enumerate(upserts):
        path = f"{key}[{i}]"
        if not isinstance(raw, dict):
            raise _shape(path, raw, "struct Document")
        if "id" not in raw:
            raise ShapeError(f"{PREFIX}{path}: missing field `id`")
        doc_id = raw["id"]
        if not isinstance(doc_id, str):
            raise _shape(f"{path}.id", doc_id, "a string")
        vec = raw.get("vector")
        vector = None if vec is None else _vector(f"{path}.vector", vec, may_contain_bools)
        ops.append(Upsert(Document(doc_id, vector, raw.get("attributes"))))


# --- compat versions and PR #11 (c152c2d) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """PR #11 ``*_condition``: bounds on the namespace's high-water mark before the append."""

    min_wal_sequence: int | None = None
    max_wal_sequence: int | None = None

    def check(self, wal_sequence: int) -> None:
        """Raise ``PreconditionFailed`` (412) when ``wal_sequence`` is out of bounds."""
        low, high = self.min_wal_sequence, self.max_wal_sequence
        if low is not None and wal_sequence < low:
            raise PreconditionFailed(f"wal sequence {wal_sequence} below required minimum {low}")
        if high is not None and wal_sequence > high:
            raise PreconditionFailed(f"wal sequence {wal_sequence} above allowed maximum {high}")


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """A parsed write: its WAL batch, and PR #11's conditions and empty-batch rule."""

    batch: WalBatch
    conditions: tuple[WriteCondition, ...] = ()
    reject_empty: bool = False


def parse_write_request(
    namespace: str, body: Any, compat: Compat, may_contain_bools: bool = True
) -> WriteRequest:
    """The write request of ``body`` as the ``compat`` version reads it."""
    if compat != "c152c2d":
        return WriteRequest(parse_write(namespace, body, may_contain_bools))
    return _parse_pr11(namespace, body, may_contain_bools)


_U64_MAX = 2**64 - 1
_CONDITIONS = ("upsert_condition", "patch_condition", "delete_condition")


def _list(path: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _shape(path, value, "a sequence")
    return value


def _strings(path: str, value: Any) -> list[str]:
    for i, item in enumerate(_list(path, value)):
        if not isinstance(item, str):
            raise _shape(f"{path}[{i}]", item, "a string")
    return list(value)


def _struct(path: str, value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _shape(path, value, f"struct {name}")
    return value


def _missing(path: str, field: str) -> ShapeError:
    return ShapeError(f"{PREFIX}{path}: missing field `{field}`")


def _u64(path: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _shape(path, value, "u64")
    if not 0 <= value <= _U64_MAX:
        raise ShapeError(f"{PREFIX}{path}: invalid value: integer `{value}`, expected u64")
    return value


def _condition(path: str, value: Any) -> WriteCondition | None:
    if value is None:
        return None
    raw = _struct(path, value, "ConditionPayload")
    return WriteCondition(
        _u64(f"{path}.min_wal_sequence", raw.get("min_wal_sequence")),
        _u64(f"{path}.max_wal_sequence", raw.get("max_wal_sequence")),
    )


@dataclass
class _Pr11Payload:
    upsert_rows: list[Any]
    upsert_columns: list[dict[str, Any]]
    patch_rows: list[dict[str, Any]]
    patch_columns: list[dict[str, Any]]
    deletes: list[str]
    delete_by_filter: list[Operation]
    conditions: list[WriteCondition]


def _parse_pr11(namespace: str, body: Any, bools: bool) -> WriteRequest:
    """PR #11's ``WritePayload``: deserialise (422), then build the batch (400)."""
    if not isinstance(body, dict):
        raise ShapeError(f"{PREFIX}invalid type: {unexpected(body)}, expected struct WritePayload")
    payload = _Pr11Payload([], [], [], [], [], [], [])
    upserts: list[Operation] = []
    seen_rows = False
    with np.errstate(over="ignore"):
        for key, value in body.items():
            if key in ("upsert_rows", "upserts"):
                if seen_rows:
                    raise ShapeError(f"{PREFIX}duplicate field `upsert_rows`")
                seen_rows = True
                _upserts(_list(key, value), upserts, bools, key)
            elif key == "upsert_columns":
                payload.upsert_columns = [
                    _upsert_column(f"{key}[{i}]", c, bools) for i, c in enumerate(_list(key, value))
                ]
            elif key == "patch_rows":
                payload.patch_rows = [
                    _patch_row(f"{key}[{i}]", r) for i, r in enumerate(_list(key, value))
                ]
            elif key == "patch_columns":
                payload.patch_columns = [
                    _patch_column(f"{key}[{i}]", c, bools) for i, c in enumerate(_list(key, value))
                ]
            elif key == "deletes":
                payload.deletes = _strings(key, value)
            elif key == "delete_by_filter":
                payload.delete_by_filter = [
                    DeleteByFilter(parse_filter(f"{key}[{i}]", f))
                    for i, f in enumerate(_list(key, value))
                ]
            elif key in _CONDITIONS:
                condition = _condition(key, value)
                if condition is not None:
                    payload.conditions.append(condition)
    ops: list[Operation] = []
    for op in upserts:
        if isinstance(op, Upsert) and op.document.id == "":
            raise BadRequest("id must not be empty")
        ops.append(op)
    for column in payload.upsert_columns:
        ops.extend(Upsert(d) for d in _column_documents(column))
    for row in payload.patch_rows:
        ops.append(_row_patch(row))
    for column in payload.patch_columns:
        ops.extend(_column_patches(column))
    ops.extend(Delete(doc_id) for doc_id in payload.deletes)
    ops.extend(payload.delete_by_filter)
    # Write order in the WAL: upserts, patches, deletes, delete-by-filter (CONTRACT §2.7).
    order = {Upsert: 0, Patch: 1, Delete: 2, DeleteByFilter: 3}
    ops.sort(key=lambda op: order[type(op)])
    return WriteRequest(WalBatch(namespace, tuple(ops)), tuple(payload.conditions), True)


def _upsert_column(path: str, raw: Any, bools: bool) -> dict[str, Any]:
    column = _struct(path, raw, "ColumnUpsert")
    out: dict[str, Any] = {"vector": None, "attributes": {}}
    for key, value in column.items():
        sub = f"{path}.{key}"
        if key == "ids":
            out["ids"] = _strings(sub, value)
        elif key == "vector" and value is not None:
            out["vector"] = [
                _vector(f"{sub}[{i}]", v, bools) for i, v in enumerate(_list(sub, value))
            ]
        elif key == "attributes":
            out["attributes"] = _columns(sub, value)
    if "ids" not in out:
        raise _missing(path, "ids")
    return out


def _columns(path: str, value: Any) -> dict[str, list[Any]]:
    raw = _struct(path, value, "BTreeMap")
    return {name: _list(f"{path}.{name}", values) for name, values in sorted(raw.items())}


def _patch_row(path: str, raw: Any) -> dict[str, Any]:
    row = _struct(path, raw, "PatchDocumentPayload")
    if "id" not in row:
        raise _missing(path, "id")
    if not isinstance(row["id"], str):
        raise _shape(f"{path}.id", row["id"], "a string")
    return row


def _patch_column(path: str, raw: Any, bools: bool) -> dict[str, Any]:
    column = _struct(path, raw, "ColumnPatchPayload")
    out: dict[str, Any] = {"vector": None, "attributes": {}, "clear_attributes": []}
    for key, value in column.items():
        sub = f"{path}.{key}"
        if key == "ids":
            out["ids"] = _strings(sub, value)
        elif key == "vector" and value is not None:
            out["vector"] = [
                None if v is None else _vector(f"{sub}[{i}]", v, bools)
                for i, v in enumerate(_list(sub, value))
            ]
        elif key == "attributes":
            out["attributes"] = _columns(sub, value)
        elif key == "clear_attributes":
            out["clear_attributes"] = _strings(sub, value)
    if "ids" not in out:
        raise _missing(path, "ids")
    return out


def _check_lengths(kind: str, column: dict[str, Any]) -> None:
    n = len(column["ids"])
    if column["vector"] is not None and len(column["vector"]) != n:
        raise BadRequest(f"{kind}.vector length must match ids")
    for name, values in column["attributes"].items():
        if len(values) != n:
            raise BadRequest(f"{kind}.{name} length must match ids")


def _column_documents(column: dict[str, Any]) -> list[Document]:
    if not column["ids"]:
        return []
    _check_lengths("upsert_columns", column)
    docs = []
    for i, doc_id in enumerate(column["ids"]):
        if doc_id == "":
            raise BadRequest("id must not be empty")
        vector = None if column["vector"] is None else column["vector"][i]
        attributes = {name: values[i] for name, values in column["attributes"].items()}
        docs.append(Document(doc_id, vector, attributes or None))
    return docs


def _column_patches(column: dict[str, Any]) -> list[Patch]:
    if not column["ids"]:
        return []
    _check_lengths("patch_columns", column)
    clear = set(column["clear_attributes"])
    patches = []
    for i, doc_id in enumerate(column["ids"]):
        if doc_id == "":
            raise BadRequest("id must not be empty")
        vector: VectorChange = None
        if column["vector"] is not None:
            entry = column["vector"][i]
            vector = REMOVE_VECTOR if entry is None else entry
        sets = []
        removes = []
        for name, values in column["attributes"].items():
            if values[i] is None:
                removes.append(name)
            else:
                sets.append((name, values[i]))
        attributes = None
        if doc_id in clear or sets or removes:
            attributes = AttributesPatch(tuple(sets), tuple(removes), doc_id in clear)
        patches.append(Patch(doc_id, vector, attributes))
    return patches


def _row_patch(row: dict[str, Any]) -> Patch:
    doc_id = row["id"]
    if doc_id == "":
        raise BadRequest("id must not be empty")
    vector: Vector | None = None
    raw_vector = row.get("vector")
    if raw_vector is not None:  # serde reads null as None: no change
        if not isinstance(raw_vector, list):
            raise BadRequest("vector patch must be null or an array of numbers")
        for v in raw_vector:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise BadRequest("vector patch entries must be numeric values")
        with np.errstate(over="ignore"):
            vector = np.array([float(v) for v in raw_vector], dtype=np.float64).astype(np.float32)
    attributes = None
    raw_attributes = row.get("attributes")
    if raw_attributes is not None:
        if not isinstance(raw_attributes, dict):
            raise BadRequest("patch_rows.attributes must be an object or null")
        # serde_json's map (no preserve_order) iterates keys sorted.
        items = sorted(raw_attributes.items(), key=lambda kv: kv[0])
        sets = tuple((k, v) for k, v in items if v is not None)
        removes = tuple(k for k, v in items if v is None)
        if sets or removes:
            attributes = AttributesPatch(sets, removes)
    return Patch(doc_id, vector, attributes)
