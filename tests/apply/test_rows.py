"""Row validation and mapping: every invalid-row reason, exact document bytes, include/rename."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elax_plan.apply.readers import Location, RawRow, ResumePoint, open_source
from elax_plan.apply.rows import InvalidRow, MappedRow, RowMapper

VEC = "[0.5,1,-2.25,3e-05]"


def map_lines(tmp_path: Path, lines: list[bytes], **mapper: Any) -> list[MappedRow | InvalidRow]:
    """Map the lines every way a mapper gets them: decoded by the source, and undecoded (the
    mapper's own fast path, as apply reads them), with the C check of the vector's text and
    without it (an install without a compiler); all must agree byte for byte."""
    path = tmp_path / f"rows{random.random()}.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    rows = RowMapper(**mapper)
    decoded = [rows.map(raw) for raw in open_source(path.as_uri())]
    undecoded = [rows.map(raw) for raw in open_source(path.as_uri(), decode=False)]
    assert undecoded == decoded
    without_extension = RowMapper(**mapper)
    without_extension._array_length = None
    assert [without_extension.map(raw) for raw in open_source(path.as_uri(), decode=False)] == (
        decoded
    )
    return decoded


def map_one(tmp_path: Path, line: str | bytes, **mapper: Any) -> MappedRow | InvalidRow:
    data = line.encode() if isinstance(line, str) else line
    (result,) = map_lines(tmp_path, [data], **mapper)
    return result


def document(result: MappedRow | InvalidRow) -> dict[str, Any]:
    assert isinstance(result, MappedRow), result
    parsed = orjson.loads(result.document)
    assert isinstance(parsed, dict)
    return parsed


def f32(values: list[float]) -> list[float]:
    narrowed: list[float] = np.asarray(values, dtype=np.float64).astype(np.float32).tolist()
    return narrowed


def test_a_valid_row_is_serialised_with_keys_in_order(tmp_path: Path) -> None:
    """{"id","vector","attributes"} in that order; the integer id becomes its decimal string."""
    line = '{"title":"Down jacket","id":7,"vector":' + VEC + ',"price":12.5,"tags":["a"]}'
    result = map_one(tmp_path, line, vector_dims=4)
    assert isinstance(result, MappedRow)
    assert result.id == "7"
    assert result.document == (
        b'{"id":"7","vector":' + VEC.encode() + b',"attributes":'
        b'{"title":"Down jacket","price":12.5,"tags":["a"]}}'
    )
    assert result.location.line == 1


@pytest.mark.parametrize(
    ("written", "sent"),
    [
        ("1180591620717411303424", "1180591620717411303424"),  # 2**70: orjson decodes a float
        ("18446744073709551615", "18446744073709551615"),  # 2**64 - 1
        ("-9223372036854775809", "-9223372036854775809"),  # -2**63 - 1: a float to orjson
        ("9" * 300, "9" * 300),
        ("0", "0"),
    ],
)
@pytest.mark.parametrize("vector_field", ["vector", None])
def test_integer_ids_are_sent_as_their_exact_decimal_string(
    tmp_path: Path, written: str, sent: str, vector_field: str | None
) -> None:
    """An integer id of any size is sent (and reported) as its exact digits, never as the
    float a JSON parser rounds it to (2**70 is not 1.1805916207174113e+21)."""
    line = '{"id":' + written + ',"vector":[1.5],"n":1}'
    result = map_one(tmp_path, line, vector_field=vector_field)
    assert isinstance(result, MappedRow), result
    assert result.id == sent
    assert orjson.loads(result.document)["id"] == sent


@pytest.mark.parametrize(
    ("written", "what"),
    [
        ("1e3", "1e3 (a number with an exponent)"),
        ("1E+3", "1E+3 (a number with an exponent)"),
        ("1.0", "1.0 (a number with a fraction)"),
        ("-2.5e10", "-2.5e10 (a number with a fraction)"),
        ("1.5", "1.5 (a number with a fraction)"),
        ("1180591620717411303424.0", "1180591620717411303424.0 (a number with a fraction)"),
    ],
)
def test_an_id_with_a_fraction_or_exponent_is_invalid_as_written(
    tmp_path: Path, written: str, what: str
) -> None:
    """A JSON number with a fraction or an exponent is not an integer id: the row is invalid,
    and the reason quotes the number as written (1e3, not 1000.0)."""
    line = '{"id":' + written + ',"vector":[1.5]}'
    for vector_field in ("vector", None):
        result = map_one(tmp_path, line, vector_field=vector_field)
        assert isinstance(result, InvalidRow), result
        assert result.reason == f"id must be a string or an integer, got {what}"


def test_vector_and_attributes_are_left_out_when_absent(tmp_path: Path) -> None:
    """No vector field configured → no "vector"; no other fields → no "attributes"."""
    only_vector = map_one(tmp_path, '{"id":"a","vector":[1.5]}')
    assert isinstance(only_vector, MappedRow)
    assert only_vector.document == b'{"id":"a","vector":[1.5]}'
    no_vector = map_one(tmp_path, '{"id":"a","vector":[1.5],"n":null}', vector_field=None)
    assert isinstance(no_vector, MappedRow)
    assert no_vector.document == b'{"id":"a","attributes":{"vector":[1.5],"n":null}}'


def test_float32_encoding_rewrites_numbers_at_float32_precision(tmp_path: Path) -> None:
    """vector_encoding=float32 sends the float32 value's shortest digits."""
    result = map_one(
        tmp_path, '{"id":"a","vector":[0.1,2,0.30000001192092896]}', vector_encoding="float32"
    )
    assert isinstance(result, MappedRow)
    assert result.document == b'{"id":"a","vector":[0.1,2.0,0.3]}'


def test_float32_limits_are_exact(tmp_path: Path) -> None:
    """float32's largest value passes; the first value that narrows to infinity does not."""
    largest = map_one(tmp_path, '{"id":"a","vector":[3.4028234663852886e38,-3.4e38]}')
    assert isinstance(largest, MappedRow)
    overflow = map_one(tmp_path, '{"id":"a","vector":[1,3.4028235677973366e38]}')
    assert isinstance(overflow, InvalidRow)
    assert overflow.reason == "vector[1] is 3.4028235677973366e+38, outside float32 range"


INVALID = [
    ('{"id": 1,', "line is not valid JSON: "),
    ("[1,2]", "line is a JSON array, not an object"),
    ('"just text"', "line is a JSON string, not an object"),
    (f'{{"vector":{VEC}}}', "id is missing"),
    (f'{{"id":"","vector":{VEC}}}', "id is empty"),
    (f'{{"id":null,"vector":{VEC}}}', "id is null"),
    (f'{{"id":1.5,"vector":{VEC}}}', "id must be a string or an integer, got 1.5"),
    (f'{{"id":true,"vector":{VEC}}}', "id must be a string or an integer, got true"),
    (f'{{"id":[1],"vector":{VEC}}}', "id must be a string or an integer, got a list"),
    ('{"id":"a"}', "vector is missing"),
    ('{"id":"a","vector":null}', "vector is null"),
    ('{"id":"a","vector":"0.1,0.2"}', 'vector must be a list of numbers, got the string "0.1,0.2"'),
    ('{"id":"a","vector":[1,2,3]}', "vector has 3 numbers, expected 4"),
    ('{"id":"a","vector":[1,2,3,4,5]}', "vector has 5 numbers, expected 4"),
    ('{"id":"a","vector":[1,NaN,3,4]}', "line is not valid JSON (NaN and Infinity are not JSON"),
    ('{"id":"a","vector":[1,2,Infinity,4]}', "line is not valid JSON (NaN and Infinity are not"),
    ('{"id":"a","vector":[1,2,1e39,4]}', "vector[2] is 1e+39, outside float32 range"),
    ('{"id":"a","vector":[-1e39,2,3,4]}', "vector[0] is -1e+39, outside float32 range"),
    ('{"id":"a","vector":[1,2,3,1e400]}', "line is not valid JSON: number is infinity"),
    (
        '{"id":"a","vector":[1,' + "1" * 41 + ",3,4]}",
        "vector[1] is 1.111111111111111e+40, outside float32",
    ),
    ('{"id":"a","vector":[1,"0.5",3,4]}', 'vector[1] is the string "0.5", not a number'),
    ('{"id":"a","vector":[1,null,3,4]}', "vector[1] is null, not a number"),
    ('{"id":"a","vector":[1,2,3,true]}', "vector[3] is true, not a number"),
    ('{"id":"a","vector":[[1],2,3,4]}', "vector[0] is a list, not a number"),
    ('{"id":"a","vector":[1,2,{"x":1},4]}', "vector[2] is an object, not a number"),
]


@pytest.mark.parametrize(("line", "reason"), INVALID)
def test_every_invalid_row_has_a_plain_reason(tmp_path: Path, line: str, reason: str) -> None:
    """Each rule breaks with its own reason, the line number and a short excerpt."""
    rows = map_lines(tmp_path, [b'{"id":"ok","vector":[1,2,3,4]}', line.encode()], vector_dims=4)
    assert isinstance(rows[0], MappedRow)
    invalid = rows[1]
    assert isinstance(invalid, InvalidRow), invalid
    assert invalid.reason.startswith(reason), invalid.reason
    assert invalid.location.line == 2
    assert invalid.raw_excerpt == line[:200]
    assert invalid.resume.line == 2


def test_an_empty_vector_is_invalid_without_declared_dims(tmp_path: Path) -> None:
    """[] is never a vector."""
    result = map_one(tmp_path, '{"id":"a","vector":[]}')
    assert isinstance(result, InvalidRow) and result.reason == "vector is empty"


def test_boolean_in_vector_is_caught_on_every_path(tmp_path: Path) -> None:
    """JSON true is not a number, whether the vector text is reused or re-serialised."""
    for encoding in ("source", "float32"):
        result = map_one(tmp_path, '{"id":"a","vector":[1,false]}', vector_encoding=encoding)
        assert (
            isinstance(result, InvalidRow) and result.reason == "vector[1] is false, not a number"
        )


def test_attribute_limits(tmp_path: Path) -> None:
    """More than 256 attribute names, or a name over 128 bytes, makes the row invalid."""
    many = {"id": "a", "vector": [1.0]} | {f"f{i}": i for i in range(300)}
    result = map_one(tmp_path, orjson.dumps(many))
    assert isinstance(result, InvalidRow)
    assert result.reason == "more than 256 attribute names (300)"
    assert len(result.raw_excerpt) == 201 and result.raw_excerpt.endswith("…")
    exactly = {"id": "a", "vector": [1.0]} | {f"f{i}": i for i in range(256)}
    assert isinstance(map_one(tmp_path, orjson.dumps(exactly)), MappedRow)
    long_name = "é" * 65  # 130 bytes in UTF-8, 65 characters
    result = map_one(tmp_path, orjson.dumps({"id": "a", "vector": [1.0], long_name: 1}))
    assert isinstance(result, InvalidRow)
    assert result.reason == f"attribute name longer than 128 bytes: {'é' * 40}…"
    fits = map_one(tmp_path, orjson.dumps({"id": "a", "vector": [1.0], "é" * 64: 1}))
    assert isinstance(fits, MappedRow)


def test_a_document_over_64_mib_is_invalid() -> None:
    """elacsym's 64 MiB document limit is checked on the serialised document."""
    raw = RawRow(
        Location("file:///x.ndjson", 1),
        ResumePoint(10, 1),
        {"id": "a", "vector": [1.0], "blob": "x" * (64 << 20)},
    )
    result = RowMapper().map(raw)
    assert isinstance(result, InvalidRow)
    assert result.reason.endswith("bytes, more than elacsym's 64 MiB limit")


def test_include_and_rename_as_in_the_spec_example(tmp_path: Path) -> None:
    """include lists names as written; rename fills title from title_v2 and drops the old title."""
    line = orjson.dumps(
        {
            "id": 1,
            "vector": [1.0],
            "title": "old",
            "title_v2": "new",
            "category": "outerwear",
            "price": 3,
            "internal": "x",
        }
    )
    result = map_one(
        tmp_path, line, include=["title", "category", "price"], rename={"title_v2": "title"}
    )
    assert document(result)["attributes"] == {"title": "new", "category": "outerwear", "price": 3}


def test_include_may_name_the_source_field_of_a_rename(tmp_path: Path) -> None:
    """include: [title_v2] with rename title_v2 → title keeps it, as title."""
    line = b'{"id":1,"vector":[1.0],"title_v2":"new","other":1}'
    result = map_one(tmp_path, line, include=["title_v2"], rename={"title_v2": "title"})
    assert document(result)["attributes"] == {"title": "new"}


def test_rename_without_include_keeps_every_other_field(tmp_path: Path) -> None:
    """rename alone renames; all other fields stay; the shadowed original is dropped."""
    line = b'{"id":1,"vector":[1.0],"name":"n","label":"shadowed","n":2}'
    result = map_one(tmp_path, line, rename={"name": "label"})
    assert document(result)["attributes"] == {"label": "n", "n": 2}


def test_custom_id_and_vector_fields(tmp_path: Path) -> None:
    """id_field/vector_field name the source fields; reasons name them when missing."""
    line = b'{"sku":42,"emb":[1.0,2.0],"id":"not the id"}'
    result = map_one(tmp_path, line, id_field="sku", vector_field="emb")
    assert document(result) == {
        "id": "42",
        "vector": [1.0, 2.0],
        "attributes": {"id": "not the id"},
    }
    missing = map_one(tmp_path, b'{"emb":[1.0]}', id_field="sku", vector_field="emb")
    assert isinstance(missing, InvalidRow) and missing.reason == 'id is missing (no "sku" field)'
    missing = map_one(tmp_path, b'{"sku":1}', id_field="sku", vector_field="emb")
    assert (
        isinstance(missing, InvalidRow) and missing.reason == 'vector is missing (no "emb" field)'
    )


TRICKY = [
    b'{"meta":{"vector":[9,9]},"id":1,"vector":[1,2]}',
    b'{"title":"vector","id":1,"vector":[1,2]}',
    b'{"id":1,"vector":[7,7],"vector":[1,2]}',
    b'{"id":1,"vector":[7,7],"vec\\u0074or":[1,2]}',
    b'{ "id" : 1 , "vector" : [ 1 , 2 ] , "t" : "x" }',
    b'{"id":1,"title":"a \\"vector\\":[3,3] b","vector":[1,2]}',
    b'{"id":1,"title":"ends with a backslash \\\\","vector":[1,2]}',
    b'{"id":1,"tags":["a","b"],"vector":[1,2]}',
    b'{"id":1,"x":{"vector":[5,5]},"vector":[1,2],"y":{"vector":[6,6]}}',
    b'{"id":1,"vector":[1,2],"note":"\\u00e9t\\u00e9"}',
]


@pytest.mark.parametrize(
    "line",
    [
        b'{"meta":{"vector":[9,9]},"vector":0,"id":1}',
        b'{"vector":0,"id":1,"meta":{"vector":[9,9]}}',
        b'{"vec\\u0074or":0,"id":1,"x":{"vector":[1,2]}}',
        b'{"id":1,"vector":[1,2],"vector":0}',
        b'{"id":1,"x":"\\"vector\\":[1,2]","vector":0}',
    ],
)
def test_a_decoy_vector_never_stands_in_for_an_invalid_one(tmp_path: Path, line: bytes) -> None:
    """The top-level vector is 0 (invalid); a well-formed vector elsewhere must not be sent."""
    result = map_one(tmp_path, line)
    assert isinstance(result, InvalidRow)
    assert result.reason == "vector must be a list of numbers, got 0"


@pytest.mark.parametrize(
    ("vector", "reason"),
    [
        ("[1,true]", "vector[1] is true, not a number"),
        ("[1,null]", "vector[1] is null, not a number"),
        ('[1,"2"]', 'vector[1] is the string "2", not a number'),
        ("[1,[2]]", "vector[1] is a list, not a number"),
        ("[]", "vector is empty"),
        ("[1,1e39]", "vector[1] is 1e+39, outside float32 range"),
        ("[1,-3.4028236e38]", "vector[1] is -3.4028236e+38, outside float32 range"),
        ("[1,123456789012345678901234567890]", None),
        (
            "[1,-123456789012345678901234567890123456789012]",
            "vector[1] is -1.2345678901234568e+41, outside float32 range",
        ),
        ("[1,18446744073709551616]", None),
        ("[3.4028234e38,-3.4028234e38]", None),
        ("[1e-400,0,-0]", None),
        ("[9.99e37,1E+2,-0.0e-5]", None),
        ("[0e99,1]", None),  # beyond the C check's bound by its form: the full decode takes it
    ],
)
def test_vectors_the_fast_path_leaves_to_the_full_one(
    tmp_path: Path, vector: str, reason: str | None
) -> None:
    """Non-numbers, huge integers and out-of-range values get the full path's exact reason."""
    result = map_one(tmp_path, '{"id":1,"vector":' + vector + "}")
    if reason is None:
        assert document(result)["vector"] == orjson.loads(vector)
    else:
        assert isinstance(result, InvalidRow) and result.reason == reason


def test_the_fast_path_takes_usual_rows_even_after_a_failure() -> None:
    """simdjson's parser is reused row after row; a row it refused must not leave it stuck."""
    mapper = RowMapper(vector_dims=2)
    usual = b'{"id":1,"vector":[0.5,-1],"title":"t\\u00e9"}'
    assert mapper._fast_line(usual) is not None
    for bad in (b'{"id":1,"vector":[1,true]}', b'{"id":1,"vector":[1,2,3]}', b'{"vector":[1'):
        assert mapper._fast_line(bad) is None
        assert mapper._fast_line(usual) == (
            "1",
            b'{"id":"1","vector":[0.5,-1],"attributes":{"title":"t\xc3\xa9"}}',
        )


@pytest.mark.parametrize("line", TRICKY)
def test_the_vector_sent_is_the_one_validated(tmp_path: Path, line: bytes) -> None:
    """Decoys (nested keys, strings, duplicate or escaped keys) never leak into the document."""
    expected = orjson.loads(line)
    doc = document(map_one(tmp_path, line))
    assert doc["vector"] == [1, 2]
    attributes = {k: v for k, v in expected.items() if k not in ("id", "vector")}
    assert doc.get("attributes", {}) == attributes


def test_random_layouts_round_trip(tmp_path: Path) -> None:
    """Seeded fuzz: any key order, spacing and decoys give back the row's own values."""
    rng = random.Random(5)
    lines, records = [], []
    for i in range(300):
        fields: list[tuple[str, Any]] = [
            ("id", i if rng.random() < 0.5 else f"doc-{i}"),
            ("vector", [rng.uniform(-1e3, 1e3) for _ in range(rng.randint(1, 6))]),
            ("title", rng.choice(['say "vector":[1]', "vector", "plain", "back\\slash", "é"])),
            ("meta", {"vector": [rng.random()]} if rng.random() < 0.3 else rng.random()),
        ]
        rng.shuffle(fields)
        record = dict(fields)
        separators = rng.choice([(",", ":"), (", ", ": "), (" , ", " : ")])
        lines.append(
            json.dumps(record, separators=separators, ensure_ascii=rng.random() < 0.5).encode()
        )
        records.append(record)
    for record, result in zip(records, map_lines(tmp_path, lines), strict=True):
        doc = document(result)
        assert doc["id"] == str(record["id"])
        assert f32(doc["vector"]) == f32(record["vector"])
        assert doc["attributes"] == {"title": record["title"], "meta": record["meta"]}


# --- Parquet ---------------------------------------------------------------------------------


def map_parquet(tmp_path: Path, table: pa.Table, **mapper: Any) -> list[MappedRow | InvalidRow]:
    path = tmp_path / f"rows{random.random()}.parquet"
    pq.write_table(table, path, row_group_size=3)
    rows = RowMapper(**mapper)
    return [rows.map(raw) for raw in open_source(path.as_uri(), columns=rows.columns)]


def reasons(results: list[MappedRow | InvalidRow]) -> list[str | None]:
    return [r.reason if isinstance(r, InvalidRow) else None for r in results]


def test_parquet_float32_rows_serialise_exactly(tmp_path: Path) -> None:
    """Fixed-size float32 vectors, integer ids and text attributes give the exact bytes."""
    table = pa.table(
        {
            "id": pa.array([0, 1], pa.int64()),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array([0.1, 2, 3, 4, 5, 6], pa.float32()), 3
            ),
            "title": ["a", None],
        }
    )
    results = map_parquet(tmp_path, table, vector_dims=3)
    assert [r.document for r in results if isinstance(r, MappedRow)] == [
        b'{"id":"0","vector":[0.1,2.0,3.0],"attributes":{"title":"a"}}',
        b'{"id":"1","vector":[4.0,5.0,6.0]}',  # a Parquet null is an absent attribute
    ]
    assert [r.location.row for r in results] == [0, 1]


def test_parquet_float64_is_checked_before_narrowing(tmp_path: Path) -> None:
    """A float64 value past float32 range is rejected; the others are sent at float32."""
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "vector": pa.array([[0.1, 0.2], [1.0, 1e39], [-3.5e38, 0.0]], pa.list_(pa.float64())),
        }
    )
    results = map_parquet(tmp_path, table)
    assert reasons(results) == [
        None,
        "vector[1] is 1e+39, outside float32 range",
        "vector[0] is -3.5e+38, outside float32 range",
    ]
    assert isinstance(results[0], MappedRow)
    assert results[0].document == b'{"id":"a","vector":[0.1,0.2]}'


def test_parquet_non_finite_null_and_ragged_vectors(tmp_path: Path) -> None:
    """NaN, ±inf, a null vector, a null number and a wrong length each have their reason."""
    vectors = pa.array(
        [
            [1.0, 2.0, 3.0],
            [1.0, 2.0, float("nan")],
            [float("-inf"), 2.0, 3.0],
            None,
            [1.0, None, 3.0],
            [1.0, 2.0],
            [4.0, 5.0, 6.0],
        ],
        pa.list_(pa.float32()),
    )
    table = pa.table({"id": [str(i) for i in range(7)], "vector": vectors})
    assert reasons(map_parquet(tmp_path, table, vector_dims=3)) == [
        None,
        "vector[2] is NaN, not a finite number",
        "vector[0] is -Infinity, not a finite number",
        "vector is null",
        "vector[1] is null, not a number",
        "vector has 2 numbers, expected 3",
        None,
    ]


def test_parquet_fixed_size_wrong_dims_and_bad_columns(tmp_path: Path) -> None:
    """Declared dims against a fixed-size column; a vector column that holds no list."""
    fixed = pa.FixedSizeListArray.from_arrays(pa.array([1.0, 2.0], pa.float32()), 2)
    table = pa.table({"id": ["a"], "vector": fixed})
    assert reasons(map_parquet(tmp_path, table, vector_dims=3)) == [
        "vector has 2 numbers, expected 3"
    ]
    table = pa.table({"id": ["a"], "vector": ["1,2"]})
    assert reasons(map_parquet(tmp_path, table)) == ["vector column has type string, not a list"]
    table = pa.table({"id": ["a"], "emb": pa.array([[1.0]], pa.list_(pa.float32()))})
    assert reasons(map_parquet(tmp_path, table)) == ["vector is missing"]


def test_parquet_ids(tmp_path: Path) -> None:
    """Integer ids become strings; null, float and missing ids are invalid."""
    vector = pa.array([[1.0]] * 3, pa.list_(pa.float32()))
    table = pa.table({"id": pa.array([5, None, 7], pa.int64()), "vector": vector})
    assert reasons(map_parquet(tmp_path, table)) == [None, "id is null", None]
    table = pa.table({"id": [1.5, 2.0, 3.0], "vector": vector})
    assert reasons(map_parquet(tmp_path, table))[0] == "id must be a string or an integer, got 1.5"
    table = pa.table({"key": ["a", "b", "c"], "vector": vector})
    assert reasons(map_parquet(tmp_path, table)) == ["id is missing"] * 3


def test_parquet_integer_and_decimal_ids_are_exact(tmp_path: Path) -> None:
    """int64, uint64 and integral decimal ids are sent as their exact digits; a decimal with
    a fractional scale is invalid, quoted as stored."""
    vector = pa.array([[1.0]] * 2, pa.list_(pa.float32()))
    cases: list[tuple[pa.Array, list[str | None]]] = [
        (pa.array([-(2**63), 2**63 - 1], pa.int64()), [str(-(2**63)), str(2**63 - 1)]),
        (pa.array([0, 2**64 - 1], pa.uint64()), ["0", str(2**64 - 1)]),
        (
            pa.array([Decimal(2**70), Decimal(-7)], pa.decimal128(38, 0)),
            [str(2**70), "-7"],
        ),
    ]
    for ids, expected in cases:
        results = map_parquet(tmp_path, pa.table({"id": ids, "vector": vector}))
        assert [r.id if isinstance(r, MappedRow) else r.reason for r in results] == expected
        assert [document(r)["id"] for r in results] == expected
    fractional = pa.array([Decimal("5.00"), Decimal("12.50")], pa.decimal128(10, 2))
    assert reasons(map_parquet(tmp_path, pa.table({"id": fractional, "vector": vector}))) == [
        "id must be a string or an integer, got the decimal 5.00",
        "id must be a string or an integer, got the decimal 12.50",
    ]


def test_parquet_attribute_types(tmp_path: Path) -> None:
    """Decimals become numbers; binary values cannot be JSON and make the row invalid."""
    vector = pa.array([[1.0]], pa.list_(pa.float32()))
    table = pa.table(
        {"id": ["a"], "vector": vector, "price": pa.array([Decimal("19.99")], pa.decimal128(5, 2))}
    )
    assert document(map_parquet(tmp_path, table)[0])["attributes"] == {"price": 19.99}
    table = pa.table({"id": ["a"], "vector": vector, "blob": pa.array([b"\x00"], pa.binary())})
    (reason,) = reasons(map_parquet(tmp_path, table))
    assert reason is not None and reason.startswith("an attribute value cannot be written as JSON")


def test_parquet_include_rename_and_column_pruning(tmp_path: Path) -> None:
    """include/rename work on columns, and only the needed columns are read."""
    table = pa.table(
        {
            "id": ["a"],
            "vector": pa.array([[1.0]], pa.list_(pa.float32())),
            "title_v2": ["new"],
            "title": ["old"],
            "secret": ["s"],
        }
    )
    mapper = RowMapper(include=["title"], rename={"title_v2": "title"})
    assert mapper.columns == ["id", "vector", "title", "title_v2"]
    (result,) = map_parquet(tmp_path, table, include=["title"], rename={"title_v2": "title"})
    assert document(result)["attributes"] == {"title": "new"}


def test_parquet_excerpt_abbreviates_vectors(tmp_path: Path) -> None:
    """A rejected Parquet row's excerpt shows its fields, not 768 numbers."""
    table = pa.table(
        {"id": [None], "vector": pa.array([[0.5] * 768], pa.list_(pa.float32())), "t": ["x"]}
    )
    (result,) = map_parquet(tmp_path, table)
    assert isinstance(result, InvalidRow)
    assert result.raw_excerpt.startswith('{"id":null,"vector":[0.5,0.5,0.5,0.5,"… 768 numbers"]')
    assert len(result.raw_excerpt) <= 200
