"""The C extension elax_plan._json_numbers: its verdicts against orjson's.

A count is a promise: orjson decodes the text to a list of that many numbers, all within
float32 range. -1 is always allowed (the caller decodes the row in full), but usual vectors
must get their count, or the fast path is lost.
"""

from __future__ import annotations

import json
import random
import struct
from typing import Any

import numpy as np
import orjson
import pytest

from elax_plan.apply.rows import FLOAT32_LIMIT

json_numbers = pytest.importorskip(
    "elax_plan._json_numbers", reason="built without a C compiler: simdjson is used instead"
)
length = json_numbers.float32_array_length


def decoded_count(text: bytes) -> int | None:
    """What the count must be per orjson: the length of a valid vector, else None."""
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not list:
        return None
    for number in value:
        if type(number) not in (int, float) or not abs(float(number)) < FLOAT32_LIMIT:
            return None
    return len(value)


def assert_sound(text: bytes) -> int:
    """The verdict on ``text``, checked: a count is orjson's count of a valid vector."""
    verdict = length(text)
    assert verdict >= -1
    if verdict >= 0:
        assert decoded_count(text) == verdict, text
    return verdict


@pytest.mark.parametrize(
    ("text", "count"),
    [
        (b"[0.5,1,-2.25,3e-05]", 4),
        (b"[]", 0),
        (b" [ 1 ,\t-0.5e-3\r\n] ", 2),
        (b"[-0,0.0,0e0,0E+0,0e-0]", 5),
        (b"[9.99e37,-99999999999999999999999999999999999999]", 2),
        (b"[0.1e38,1e-99999999999999999999,123456789012345678901234567890]", 3),
    ],
)
def test_vectors_get_their_count(text: bytes, count: int) -> None:
    assert assert_sound(text) == count


@pytest.mark.parametrize(
    "text",
    [
        b"[01]",
        b"[1.]",
        b"[.5]",
        b"[+1]",
        b"[1e]",
        b"[1e+]",
        b"[-]",
        b"[1,]",
        b"[,1]",
        b"[1 2]",
        b"[1",
        b"1",
        b"",
        b"[1]x",
        b"[1]\x00",
        b"[NaN]",
        b"[Infinity]",
        b"[-Infinity]",
        b"[true]",
        b"[null]",
        b'["1"]',
        b"[[1]]",
        b"[{}]",
        b"[1\xa02]",  # a non-breaking space is not JSON whitespace
        b"[\x0c1]",
    ],
)
def test_anything_else_is_not_certain(text: bytes) -> None:
    assert length(text) == -1


@pytest.mark.parametrize(
    "text",
    [b"[3.4028235e38]", b"[1e39]", b"[-1e39]", b"[0e99]", b"[100e37]", b"[1e99999999999999999999]"],
)
def test_numbers_that_may_be_out_of_float32_range_are_not_certain(text: bytes) -> None:
    """Beyond 10^38 the digits would have to be compared with float32's limit: left to the
    full decode (which accepts 3.4028235e38 and 0e99, and refuses the others)."""
    assert length(text) == -1


def test_any_bytes_like_object_is_read() -> None:
    line = b'{"vector":[1,2,3]}'
    assert length(memoryview(line)[10:17]) == 3
    assert length(bytearray(b"[1]")) == 1
    with pytest.raises(TypeError):
        length("[1]")


def float32_texts(rng: random.Random) -> list[bytes]:
    """Vectors written the ways real sources write them."""
    values = np.asarray([rng.gauss(0, 0.1) for _ in range(rng.randint(1, 40))], dtype=np.float32)
    doubles = values.astype(np.float64).tolist()
    scaled = [v * 10 ** rng.randint(-45, 37) for v in doubles]
    return [
        orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY),  # shortest float32 digits
        orjson.dumps(doubles),  # 17-digit doubles
        json.dumps(doubles, indent=rng.choice([None, 1])).encode(),
        json.dumps(scaled, separators=(", ", " : ")).encode(),
        json.dumps([round(v * 1000) for v in doubles]).encode(),  # integers
        ("[" + ",".join(f"{v:.3E}" for v in doubles) + "]").encode(),
    ]


def test_vectors_as_sources_write_them_get_their_count() -> None:
    rng = random.Random(11)
    for _ in range(300):
        for text in float32_texts(rng):
            assert assert_sound(text) == len(orjson.loads(text)), text


MUTATIONS = b'0123456789-+.eE,[] \t\r\n"x\x00'


def mutated(text: bytes, rng: random.Random) -> bytes:
    data = bytearray(text)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(data) + 1)
        kind = rng.random()
        if kind < 0.4 and at < len(data):
            data[at] = rng.choice(MUTATIONS)
        elif kind < 0.7:
            data.insert(at, rng.choice(MUTATIONS))
        elif at < len(data):
            del data[at]
    return bytes(data)


def test_mutated_vectors_are_counted_only_when_orjson_agrees() -> None:
    """Seeded fuzz: a count only for what orjson reads as a valid vector of that length, and
    a count for every valid vector without an exponent and below 1e30 (the bound's easy case)."""
    rng = random.Random(29)
    counted = uncertain = 0
    for _ in range(4000):
        base = rng.choice(float32_texts(rng))
        text = mutated(base, rng)
        verdict = assert_sound(text)
        expected = decoded_count(text)
        easy = (
            expected is not None
            and b"e" not in text.lower()
            and all(abs(v) < 1e30 for v in orjson.loads(text))
        )
        if easy:
            assert verdict == expected, text
        counted += verdict >= 0
        uncertain += verdict < 0
    assert counted > 500 and uncertain > 500  # both verdicts were exercised


def test_random_bit_patterns_within_range_are_counted() -> None:
    """Every finite float32, written at float64 precision, is in range: counted."""
    rng = random.Random(3)
    values = []
    while len(values) < 2000:
        (value,) = struct.unpack("<f", rng.getrandbits(32).to_bytes(4, "little"))
        if np.isfinite(value) and abs(value) < 1e38:
            values.append(value)
    text = orjson.dumps(values)
    assert assert_sound(text) == len(values)
