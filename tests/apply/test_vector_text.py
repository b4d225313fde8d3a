"""Float32 vectors → JSON text: byte-identical to orjson, reads back exactly, errors, fallback.

The C extension is checked directly (skipped when it is not built) and through the wrapper;
the wrapper's orjson fallback is checked too, so both sides stay interchangeable.
scripts/verify_f32json.py checks the extension on all 2**32 bit patterns.
"""

from __future__ import annotations

import array
from collections.abc import Callable

import numpy as np
import orjson
import pytest

from elax_plan.apply import vector_text
from elax_plan.apply.vector_text import (
    NATIVE,
    float32_row_document,
    float32_row_json,
    orjson_row_document,
    orjson_row_json,
)

try:
    from elax_plan import _f32json
except ImportError:  # built without a C compiler
    _f32json = None  # type: ignore[assignment]

needs_native = pytest.mark.skipif(
    _f32json is None,
    reason="elax_plan._f32json is not built (installed without a C compiler); "
    "the orjson fallback is tested instead",
)

RowJson = Callable[[np.ndarray, int], bytes | None]
IMPLEMENTATIONS = [
    pytest.param(float32_row_json, id="float32_row_json"),
    pytest.param(orjson_row_json, id="orjson_row_json"),
    pytest.param(getattr(_f32json, "row_json", None), id="_f32json.row_json", marks=needs_native),
]

DIMS = 768
rng = np.random.default_rng(20240611)


def orjson_text(vector: np.ndarray) -> bytes:
    return orjson.dumps(vector, option=orjson.OPT_SERIALIZE_NUMPY)


def assert_same_as_orjson(row_json: RowJson, values: np.ndarray) -> None:
    """`values` (finite float32) formatted as one vector and as rows of DIMS: the same bytes as
    orjson's, and each number reads back (as float64, then narrowed) as the same float32."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    ours = row_json(values, 0)
    theirs = orjson_text(values)
    if ours != theirs:
        assert ours is not None
        mine, others = ours[1:-1].split(b","), theirs[1:-1].split(b",")
        diffs = [
            (values[i], mine[i], others[i]) for i in range(len(values)) if mine[i] != others[i]
        ]
        pytest.fail(f"{len(diffs)} values differ from orjson, e.g. {diffs[:5]}")
    read_back = np.array(ours[1:-1].split(b","), dtype=np.float64).astype(np.float32)
    assert np.array_equal(read_back.view(np.uint32), values.view(np.uint32))

    rows = values[: len(values) // DIMS * DIMS].reshape(-1, DIMS)
    for i in range(0, len(rows), max(1, len(rows) // 50)):
        assert row_json(rows, i) == orjson_text(rows[i])


def edge_values() -> np.ndarray:
    """Zeros, subnormal and normal limits, every power of two and of ten, integers, and the
    float32 neighbours of all of them, both signs."""
    f32 = np.finfo(np.float32)
    base = [
        0.0,
        float(f32.smallest_subnormal),
        float(np.nextafter(f32.smallest_normal, np.float32(0))),  # largest subnormal
        float(f32.smallest_normal),
        float(f32.max),
        *(2.0**k for k in range(-149, 128)),
        *(float(np.float32(f"1e{k}")) for k in range(-45, 39)),
        *range(1, 10_001),
        *rng.integers(1, 10_000_001, 20_000).tolist(),
        123456789.0,
        16777216.0,
        16777217.0,
    ]
    values = np.array(base, dtype=np.float32)
    values = values[values != 0]
    with np.errstate(over="ignore"):
        up = np.nextafter(values, np.float32(np.inf))
        down = np.nextafter(values, np.float32(0))
    everything = np.concatenate([[0.0], values, up, down]).astype(np.float32)
    everything = everything[np.isfinite(everything)]
    return np.concatenate([everything, -everything])


@pytest.mark.parametrize("row_json", IMPLEMENTATIONS)
@pytest.mark.parametrize("sigma", [1.0, 0.036, 1e-3, 1e3, 1e-20, 1e20])
def test_normal_values_match_orjson(row_json: RowJson, sigma: float) -> None:
    values = (rng.standard_normal(200_000) * sigma).astype(np.float32)
    assert_same_as_orjson(row_json, values)


@pytest.mark.parametrize("row_json", IMPLEMENTATIONS)
def test_random_bit_patterns_match_orjson(row_json: RowJson) -> None:
    bits = rng.integers(0, 1 << 32, 2_000_000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    assert_same_as_orjson(row_json, values[np.isfinite(values)])


@pytest.mark.parametrize("row_json", IMPLEMENTATIONS)
def test_edge_values_match_orjson(row_json: RowJson) -> None:
    assert_same_as_orjson(row_json, edge_values())


@pytest.mark.parametrize("row_json", IMPLEMENTATIONS)
def test_layouts(row_json: RowJson) -> None:
    """The forms orjson uses (fixed up to 1e13 and down to 1e-6, exponent outside)."""
    cases = [
        (1.0, b"1.0"),
        (0.1, b"0.1"),
        (1e-05, b"0.00001"),
        (1e-06, b"0.000001"),
        (1e-07, b"1e-7"),
        (1.5e-07, b"1.5e-7"),
        (123456.0, b"123456.0"),
        (1e7, b"10000000.0"),
        (1e10, b"10000000000.0"),
        (9.99e12, b"9990000000000.0"),
        (1e13, b"1e+13"),
        (1.5e13, b"1.5e+13"),
        (1e16, b"1e+16"),
        (1e20, b"1e+20"),
        (3.4e38, b"3.4e+38"),
        (1.4e-45, b"1e-45"),
        (-0.0, b"-0.0"),
        (0.0, b"0.0"),
        (0.001, b"0.001"),
        (123456789.0, b"123456790.0"),
        (1234567.8, b"1234567.8"),
        (-0.036, b"-0.036"),
        (1.234e-06, b"0.000001234"),
    ]
    values = np.array([value for value, _ in cases], dtype=np.float32)
    assert row_json(values, 0) == b"[" + b",".join(text for _, text in cases) + b"]"


@pytest.mark.parametrize("row_json", IMPLEMENTATIONS)
def test_non_finite_rows_are_none(row_json: RowJson) -> None:
    matrix = rng.standard_normal((5, 16)).astype(np.float32)
    matrix[1, 3] = np.nan
    matrix[2, 0] = np.inf
    matrix[3, 15] = -np.inf
    assert [row_json(matrix, i) is None for i in range(5)] == [False, True, True, True, False]
    assert row_json(matrix, 4) == orjson_text(matrix[4])


@pytest.mark.parametrize("row_json", IMPLEMENTATIONS)
def test_shapes_and_buffers(row_json: RowJson) -> None:
    assert row_json(np.zeros((3, 0), np.float32), 2) == b"[]"
    assert row_json(np.array([], np.float32), 0) == b"[]"
    assert row_json(np.array([0.5], np.float32), 0) == b"[0.5]"
    assert row_json(array.array("f", [0.25, -1.5]), 0) == b"[0.25,-1.5]"
    assert row_json(memoryview(np.array([[1, 2], [3, 4]], np.float32)), np.int64(1)) == b"[3.0,4.0]"
    big = rng.standard_normal(5000).astype(np.float32)  # past the extension's stack scratch
    assert row_json(big, 0) == orjson_text(big)


@pytest.mark.parametrize("row_json", IMPLEMENTATIONS)
def test_errors(row_json: RowJson) -> None:
    matrix = np.ones((4, 8), np.float32)
    with pytest.raises(TypeError, match="float32"):
        row_json(np.ones((4, 8)), 0)  # float64
    with pytest.raises(TypeError, match="float32"):
        row_json(np.ones((4, 8), np.int32), 0)
    with pytest.raises(TypeError, match="float32"):
        row_json([[1.0, 2.0]], 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        row_json(matrix, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="C-contiguous"):
        row_json(matrix[:, ::2], 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        row_json(matrix.T, 0)
    with pytest.raises(ValueError, match="dimensions"):
        row_json(np.ones((2, 2, 2), np.float32), 0)
    for row in (4, -1, 1 << 70):
        with pytest.raises(IndexError, match="out of range"):
            row_json(matrix, row)
    with pytest.raises(IndexError, match="out of range"):
        row_json(np.ones(3, np.float32), 1)


DOCUMENT_IMPLEMENTATIONS = [
    pytest.param(float32_row_document, id="float32_row_document"),
    pytest.param(orjson_row_document, id="orjson_row_document"),
    pytest.param(
        getattr(_f32json, "row_document", None), id="_f32json.row_document", marks=needs_native
    ),
]


@pytest.mark.parametrize("row_document", DOCUMENT_IMPLEMENTATIONS)
def test_row_document(row_document: Callable[..., bytes | None]) -> None:
    matrix = rng.standard_normal((3, DIMS)).astype(np.float32)
    matrix[1, 7] = np.inf
    prefix, suffix = b'{"id":"a","vector":', b',"attributes":{"n":1}}'
    document = row_document(matrix, 0, prefix, suffix)
    assert document == prefix + orjson_text(matrix[0]) + suffix
    assert orjson.loads(document)["attributes"] == {"n": 1}
    assert row_document(matrix, 1, prefix, suffix) is None
    assert row_document(matrix, 2, b"", b"") == orjson_text(matrix[2])
    big = rng.standard_normal(5000).astype(np.float32)  # past the extension's stack scratch
    assert (
        row_document(big, 0, b"<" * 3000, b">" * 3000)
        == b"<" * 3000 + orjson_text(big) + b">" * 3000
    )
    with pytest.raises(TypeError, match="bytes"):
        row_document(matrix, 0, "{", b"}")
    with pytest.raises(IndexError, match="out of range"):
        row_document(matrix, 3, b"", b"")
    with pytest.raises(TypeError, match="float32"):
        row_document(np.ones((2, 2)), 0, b"", b"")


def test_fallback_is_used_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    matrix = rng.standard_normal((3, 8)).astype(np.float32)
    monkeypatch.setattr(vector_text, "NATIVE", False)
    assert float32_row_json(matrix, 1) == orjson_text(matrix[1])
    assert float32_row_document(matrix, 2, b"(", b")") == b"(" + orjson_text(matrix[2]) + b")"


def test_native_is_used_when_built() -> None:
    assert (_f32json is not None) == NATIVE
    if NATIVE:
        assert vector_text._native_row_json is _f32json.row_json
        assert vector_text._native_row_document is _f32json.row_document
