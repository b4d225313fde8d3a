"""The elacsym storage layout (CONTRACT §4): object keys and the exact bytes of each file.

Pure: no I/O. Owns the key names under ``namespaces/{ns}/``, the WAL batch
encoding (compact JSON, fixed struct key order, attribute keys sorted, vector
numbers at float32 precision), ``router.json`` (compact, fixed key order) and
part manifests (pretty-printed, 2-space indent, no trailing newline).

WAL operations are ``upsert`` and ``delete`` in every version, plus PR #11's
``patch`` and ``delete_by_filter`` (c152c2d, CONTRACT §4.2). The decoder reads
all four, like the newest indexer; only a c152c2d emulator writes the last two.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from elax_plan.emulator.model import Document, ShapeError, Vector
from elax_plan.emulator.query_model import (
    Filter,
    MatchFilter,
    RangeFilter,
    SetFilter,
    parse_filter,
)

WAL_NAME = re.compile(r"^WAL-(\d+)\.json$")


def namespace_prefix(ns: str) -> str:
    return f"namespaces/{ns}"


def wal_dir(ns: str) -> str:
    return f"namespaces/{ns}/wal"


def wal_key(ns: str, seq: int) -> str:
    return f"namespaces/{ns}/wal/WAL-{seq:020d}.json"


def router_key(ns: str) -> str:
    return f"namespaces/{ns}/router.json"


def manifest_key(ns: str, part_id: str) -> str:
    return f"namespaces/{ns}/parts/{part_id}.json"


def part_asset_prefix(ns: str, part_id: str) -> str:
    return f"namespaces/{ns}/parts/{part_id}"


def part_id_for(ns: str, unix_micros: int, counter: int) -> str:
    return f"part-{ns.replace('/', '_')}-{unix_micros}-{counter:016d}"


# --- WAL batches ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upsert:
    document: Document


@dataclass(frozen=True, slots=True)
class Delete:
    id: str


class _RemoveVector:
    """The ``{"action":"remove"}`` vector patch."""

    def __repr__(self) -> str:
        return "REMOVE_VECTOR"


REMOVE_VECTOR = _RemoveVector()
VectorChange = Vector | None | _RemoveVector  # a patch's new vector, REMOVE_VECTOR, or untouched


@dataclass(frozen=True, slots=True)
class AttributesPatch:
    """PR #11 attribute patch: ``clear`` first, then ``remove`` keys, then ``set`` keys."""

    set: tuple[tuple[str, Any], ...] = ()
    remove: tuple[str, ...] = ()
    clear: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Patch:
    """PR #11 ``patch``: ``vector`` is a new vector, ``REMOVE_VECTOR``, or None (untouched)."""

    id: str
    vector: VectorChange = None
    attributes: AttributesPatch | None = None


@dataclass(frozen=True, slots=True)
class DeleteByFilter:
    """PR #11 ``delete_by_filter``: deletes every document the filter matches when applied."""

    filter: Filter


Operation = Upsert | Delete | Patch | DeleteByFilter


@dataclass(frozen=True, slots=True)
class WalBatch:
    """One write request as it lands in the WAL: upserts in request order, then deletes."""

    namespace: str
    operations: tuple[Operation, ...]

    @property
    def upsert_count(self) -> int:
        return sum(1 for op in self.operations if isinstance(op, Upsert))

    @property
    def delete_count(self) -> int:
        return sum(1 for op in self.operations if isinstance(op, Delete))


_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# A JSON string literal, or the "e+" of an exponent that follows a digit. serde_json writes
# exponents without "+" (1e16, 3.4028235e38); orjson writes "e+". Strings are skipped whole so
# that text inside attribute values is never touched.
_EXPONENT_SIGN = re.compile(rb'"(?:[^"\\]|\\.)*"|(?<=[0-9])e\+')


def _strip_exponent_plus(data: bytes) -> bytes:
    if b"e+" not in data:
        return data
    return _EXPONENT_SIGN.sub(lambda m: m.group(0) if m.group(0)[:1] == b'"' else b"e", data)


def encode_vector(vector: np.ndarray[Any, Any]) -> bytes:
    """A float32 vector as serde_json writes it: shortest f32 digits, non-finite as null."""
    return orjson.dumps(vector, option=_NUMPY).replace(b"e+", b"e")


def encode_attributes(attributes: Any) -> bytes:
    """Attributes as serde_json (without preserve_order) writes them: object keys sorted."""
    return _strip_exponent_plus(orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS))


def encode_document(doc: Document) -> bytes:
    out = b'{"id":' + orjson.dumps(doc.id)
    if doc.vector is not None:
        out += b',"vector":' + encode_vector(doc.vector)
    if doc.attributes is not None:
        out += b',"attributes":' + encode_attributes(doc.attributes)
    return out + b"}"


def encode_filter(expr: Filter) -> bytes:
    """A filter as serde serialises ``FilterExpr``: the ``op`` tag first, then its fields."""
    op: str
    if isinstance(expr, MatchFilter):
        rest = b',"value":' + encode_attributes(expr.value)
        op = expr.op
    elif isinstance(expr, SetFilter):
        rest = b',"values":' + encode_attributes(list(expr.values))
        op = expr.op
    elif isinstance(expr, RangeFilter):
        rest = b',"value":' + encode_attributes(float(expr.value))
        op = expr.op
    else:
        rest = b""
        op = "exists"
    return b'{"op":"' + op.encode() + b'","field":' + orjson.dumps(expr.field) + rest + b"}"


def _encode_patch(op: Patch) -> bytes:
    out = b'{"op":"patch","id":' + orjson.dumps(op.id)
    if isinstance(op.vector, _RemoveVector):
        out += b',"vector":{"action":"remove"}'
    elif op.vector is not None:
        out += b',"vector":{"action":"set","value":' + encode_vector(op.vector) + b"}"
    if op.attributes is not None:
        fields: list[bytes] = []
        if op.attributes.set:
            fields.append(b'"set":' + encode_attributes(dict(op.attributes.set)))
        if op.attributes.remove:
            fields.append(b'"remove":' + orjson.dumps(list(op.attributes.remove)))
        if op.attributes.clear:
            fields.append(b'"clear":true')
        out += b',"attributes":{' + b",".join(fields) + b"}"
    return out + b"}"


def encode_wal_batch(batch: WalBatch) -> bytes:
    """The WAL file bytes of ``batch`` (CONTRACT §4.2)."""
    ops: list[bytes] = []
    for op in batch.operations:
        if isinstance(op, Upsert):
            ops.append(b'{"op":"upsert","document":' + encode_document(op.document) + b"}")
        elif isinstance(op, Delete):
            ops.append(b'{"op":"delete","id":' + orjson.dumps(op.id) + b"}")
        elif isinstance(op, Patch):
            ops.append(_encode_patch(op))
        else:
            ops.append(b'{"op":"delete_by_filter","filter":' + encode_filter(op.filter) + b"}")
    return (
        b'{"namespace":'
        + orjson.dumps(batch.namespace)
        + b',"operations":['
        + b",".join(ops)
        + b"]}"
    )


class WalDecodeError(ValueError):
    """A WAL file that a node cannot replay (hazard H4: a null inside a vector, bad shape)."""


def decode_wal_batch(data: bytes, key: str = "") -> WalBatch:
    """Parse a WAL file; any deviation from the batch shape is a ``WalDecodeError``."""
    try:
        raw = orjson.loads(data)
        namespace = raw["namespace"]
        operations = raw["operations"]
        if not isinstance(namespace, str) or not isinstance(operations, list):
            raise TypeError("namespace must be a string and operations a list")
        ops: list[Operation] = []
        for item in operations:
            tag = item["op"]
            if tag == "upsert":
                d = item["document"]
                vec = d.get("vector")
                vector = None
                if vec is not None:
                    if any(v is None for v in vec):
                        raise TypeError("invalid type: null, expected f32")
                    vector = np.asarray(vec, dtype=np.float32)
                doc_id = d["id"]
                if not isinstance(doc_id, str):
                    raise TypeError("id must be a string")
                ops.append(Upsert(Document(doc_id, vector, d.get("attributes"))))
            elif tag == "delete":
                ops.append(Delete(str(item["id"])))
            elif tag == "patch":
                ops.append(_decode_patch(item))
            elif tag == "delete_by_filter":
                ops.append(DeleteByFilter(parse_filter("filter", item["filter"])))
            else:
                raise TypeError(f"unknown variant `{tag}`")
        return WalBatch(namespace, tuple(ops))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ShapeError) as exc:
        raise WalDecodeError(f"failed to decode WAL batch {key}: {exc}") from exc


def _decode_patch(item: dict[str, Any]) -> Patch:
    doc_id = item["id"]
    if not isinstance(doc_id, str):
        raise TypeError("id must be a string")
    vector: VectorChange = None
    raw_vector = item.get("vector")
    if raw_vector is not None:
        action = raw_vector["action"]
        if action == "remove":
            vector = REMOVE_VECTOR
        elif action == "set":
            values = raw_vector["value"]
            if any(v is None for v in values):
                raise TypeError("invalid type: null, expected f32")
            vector = np.asarray(values, dtype=np.float32)
        else:
            raise TypeError(f"unknown variant `{action}`")
    attributes = None
    raw_attributes = item.get("attributes")
    if raw_attributes is not None:
        attributes = AttributesPatch(
            set=tuple((raw_attributes.get("set") or {}).items()),
            remove=tuple(raw_attributes.get("remove") or ()),
            clear=bool(raw_attributes.get("clear", False)),
        )
    return Patch(doc_id, vector, attributes)


# --- router.json and part manifests ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartManifest:
    """One part: the WAL range it covers and the operations it counts (CONTRACT §4.4)."""

    id: str
    wal_start: int
    wal_end: int
    rows: int
    compacted_from: tuple[str, ...] = ()
    tombstones: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "wal_start": self.wal_start,
            "wal_end": self.wal_end,
            "rows": self.rows,
        }
        if self.compacted_from:
            out["compacted_from"] = list(self.compacted_from)
        if self.tombstones:
            out["tombstones"] = self.tombstones
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PartManifest:
        return cls(
            id=str(raw["id"]),
            wal_start=int(raw["wal_start"]),
            wal_end=int(raw["wal_end"]),
            rows=int(raw["rows"]),
            compacted_from=tuple(raw.get("compacted_from") or ()),
            tombstones=int(raw.get("tombstones") or 0),
        )


def encode_manifest(part: PartManifest) -> bytes:
    """Pretty-printed manifest file: 2-space indent, no trailing newline."""
    return orjson.dumps(part.to_json(), option=orjson.OPT_INDENT_2)


@dataclass(frozen=True, slots=True)
class Router:
    """``router.json``: the namespace's sequence counters and published parts."""

    namespace: str
    epoch: int = 0
    wal_highwater: int = 0
    updated_at: int = 0
    indexed_wal: int = 0
    parts: tuple[PartManifest, ...] = field(default_factory=tuple)
    pin_hot: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "epoch": self.epoch,
            "wal_highwater": self.wal_highwater,
            "updated_at": self.updated_at,
            "indexed_wal": self.indexed_wal,
            "parts": [p.to_json() for p in self.parts],
            "pin_hot": self.pin_hot,
        }


def encode_router(router: Router) -> bytes:
    return orjson.dumps(router.to_json())


def decode_router(data: bytes) -> Router:
    raw = orjson.loads(data)
    return Router(
        namespace=str(raw["namespace"]),
        epoch=int(raw["epoch"]),
        wal_highwater=int(raw["wal_highwater"]),
        updated_at=int(raw["updated_at"]),
        indexed_wal=int(raw.get("indexed_wal", 0)),
        parts=tuple(PartManifest.from_json(p) for p in raw.get("parts") or ()),
        pin_hot=bool(raw.get("pin_hot", False)),
    )


def sorted_parts(parts: Sequence[PartManifest]) -> tuple[PartManifest, ...]:
    return tuple(sorted(parts, key=lambda p: p.wal_start))
