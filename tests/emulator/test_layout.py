"""The exact bytes of WAL batches, router.json and part manifests (CONTRACT §4.2–§4.4)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from elax_plan.emulator.layout import (
    Delete,
    PartManifest,
    Router,
    Upsert,
    WalBatch,
    WalDecodeError,
    decode_router,
    decode_wal_batch,
    encode_manifest,
    encode_router,
    encode_vector,
    encode_wal_batch,
    part_id_for,
    wal_key,
)
from elax_plan.emulator.model import Document


def test_wal_batch_bytes_match_contract_example() -> None:
    """The contract's example batch is reproduced byte for byte, attribute keys sorted."""
    batch = WalBatch(
        "docs",
        (
            Upsert(
                Document(
                    "a", np.array([0.25, 1.0], dtype=np.float32), {"title": "Hi", "lang": "en"}
                )
            ),
            Delete("b"),
        ),
    )
    assert encode_wal_batch(batch) == (
        b'{"namespace":"docs","operations":[{"op":"upsert","document":{"id":"a","vector":[0.25,1.0],'
        b'"attributes":{"lang":"en","title":"Hi"}}},{"op":"delete","id":"b"}]}'
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.123456789, b"0.12345679"),
        (16777217, b"16777216.0"),
        (1, b"1.0"),
        (1e-7, b"1e-7"),
        (1e13, b"1e13"),
        (1e12, b"1000000000000.0"),
        (3.4028235e38, b"3.4028235e38"),
        (1.5e-5, b"0.000015"),
        (0.0, b"0.0"),
        (-0.0, b"-0.0"),
    ],
)
def test_vector_numbers_use_shortest_f32_digits(value: float, text: bytes) -> None:
    """Vector numbers print as serde_json prints an f32 (CONTRACT §4.2 examples)."""
    assert encode_vector(np.array([value], dtype=np.float32)) == b"[" + text + b"]"


def test_non_finite_vector_value_is_written_as_null_and_breaks_replay() -> None:
    """Hazard H4: ±inf is written as null, and that WAL file cannot be decoded again."""
    with np.errstate(over="ignore"):
        vec = np.array([1e39, 1.0], dtype=np.float32)
    data = encode_wal_batch(WalBatch("n", (Upsert(Document("x", vec, None)),)))
    assert b'"vector":[null,1.0]' in data
    with pytest.raises(WalDecodeError):
        decode_wal_batch(data)


def test_attribute_numbers_and_nested_keys() -> None:
    """Nested attribute keys are sorted; big floats lose the exponent '+', strings untouched."""
    doc = Document("i", None, {"z": {"b": 1, "a": 1.5}, "big": 1e16, "s": "1e+5", "n": 100.0})
    data = encode_wal_batch(WalBatch("n", (Upsert(doc),)))
    assert data.endswith(
        b'{"id":"i","attributes":{"big":1e16,"n":100.0,"s":"1e+5","z":{"a":1.5,"b":1}}}}]}'
    )


def test_wal_round_trip() -> None:
    """A batch decodes back to the same operations."""
    doc = Document("a", np.array([0.5, -2.0], dtype=np.float32), {"k": [1, "x"]})
    batch = WalBatch("ns", (Upsert(doc), Delete("b")))
    back = decode_wal_batch(encode_wal_batch(batch))
    assert back.namespace == "ns"
    up, de = back.operations
    assert isinstance(up, Upsert) and isinstance(de, Delete)
    assert up.document.id == "a" and up.document.attributes == {"k": [1, "x"]}
    assert up.document.vector is not None
    assert up.document.vector.tolist() == [0.5, -2.0]
    assert de.id == "b"


def test_router_key_order_and_compact_form() -> None:
    """router.json is compact with keys namespace, epoch, wal_highwater, updated_at, ... ."""
    part = PartManifest("p1", 1, 3, 256, tombstones=2)
    router = Router("docs", 5, 3, 1700000000000, 3, (part,), False)
    data = encode_router(router)
    assert data == (
        b'{"namespace":"docs","epoch":5,"wal_highwater":3,"updated_at":1700000000000,'
        b'"indexed_wal":3,"parts":[{"id":"p1","wal_start":1,"wal_end":3,"rows":256,'
        b'"tombstones":2}],"pin_hot":false}'
    )
    assert decode_router(data) == router


def test_router_defaults_for_missing_optional_keys() -> None:
    """On read, indexed_wal, parts and pin_hot default (CONTRACT §4.3)."""
    r = decode_router(b'{"namespace":"n","epoch":1,"wal_highwater":1,"updated_at":5}')
    assert (r.indexed_wal, r.parts, r.pin_hot) == (0, (), False)


def test_manifest_is_pretty_printed_without_trailing_newline() -> None:
    """Manifests use 2-space indent, omit empty compacted_from and zero tombstones."""
    data = encode_manifest(PartManifest("p", 1, 2, 10))
    assert data == b'{\n  "id": "p",\n  "wal_start": 1,\n  "wal_end": 2,\n  "rows": 10\n}'
    merged = orjson.loads(encode_manifest(PartManifest("q", 1, 9, 20, ("a", "b"), 3)))
    assert list(merged) == ["id", "wal_start", "wal_end", "rows", "compacted_from", "tombstones"]


def test_key_names() -> None:
    """WAL keys are zero-padded to 20 digits; part ids follow the real format."""
    assert wal_key("docs", 42) == "namespaces/docs/wal/WAL-00000000000000000042.json"
    assert part_id_for("a/b", 1700000000000000, 7) == "part-a_b-1700000000000000-0000000000000007"
