"""Sizes and durations: the grammar plans use, and its agreement with the schema."""

from __future__ import annotations

import re

import pytest

from elax_plan.spec import plan_schema
from elax_plan.spec.units import (
    DURATION_PATTERN,
    SIZE_PATTERN,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, 0),
        (1048576, 1048576),
        ("1048576", 1048576),
        ("1MiB", 1024**2),
        ("4 MiB", 4 * 1024**2),
        ("5MB", 5_000_000),
        ("5mb", 5_000_000),
        ("1.5KiB", 1536),
        ("512KiB", 512 * 1024),
        ("2GiB", 2 * 1024**3),
        ("50GB", 50 * 1000**3),
        ("1TiB", 1024**4),
        ("10B", 10),
        (" 3 kb ", 3000),
    ],
)
def test_parse_size_accepts_units_and_integers(text: int | str, expected: int) -> None:
    """Sizes accept integers (bytes) and decimal/binary units in any letter case."""
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1.5B", "not a whole number of bytes"),
        ("1MiBB", "unknown size unit"),
        ("1 Mb/s", "is not a size"),
        ("lots", "is not a size"),
        ("-5MB", "is not a size"),
        (-1, "is negative"),
        (1.5, "is not a size"),
        (True, "is not a size"),
        ("", "is not a size"),
    ],
)
def test_parse_size_refuses_nonsense_in_plain_words(text: object, reason: str) -> None:
    """A bad size raises ValueError whose message explains and never repeats the value."""
    with pytest.raises(ValueError, match=reason) as caught:
        parse_size(text)
    assert "write a size such as" in str(caught.value)
    if isinstance(text, str) and text.strip():
        assert text not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", 0.5),
        ("2s", 2.0),
        ("15m", 900.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h 30m 15s", 5415.0),
        ("1.5s", 1.5),
        ("1d", 86400.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration_accepts_units(text: str, expected: float) -> None:
    """Durations accept ms, s, m, h, d and compound forms such as 1h30m."""
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (500, "has no unit"),
        (1.5, "has no unit"),
        ("30", "has no unit"),
        ("5 minutes", "is not a duration"),
        ("1H", "is not a duration"),
        ("", "is empty"),
        ("ms", "is not a duration"),
        (None, "is not a duration"),
    ],
)
def test_parse_duration_refuses_bare_numbers_and_nonsense(value: object, reason: str) -> None:
    """A duration without a unit is refused: 500 could mean seconds or milliseconds."""
    with pytest.raises(ValueError, match=reason):
        parse_duration(value)


def test_schema_patterns_match_the_parsers() -> None:
    """The schema publishes exactly the size and duration grammar the parsers implement."""
    text = str(plan_schema())
    assert SIZE_PATTERN.replace("\\", "\\\\") in text
    assert DURATION_PATTERN.replace("\\", "\\\\") in text
    for sample in ("1MiB", "5MB", "1048576", "1.5 KiB"):
        assert re.match(SIZE_PATTERN, sample)
        parse_size(sample)
    for sample in ("500ms", "1h30m", "2 s"):
        assert re.match(DURATION_PATTERN, sample)
        parse_duration(sample)


def test_formatting_round_trips() -> None:
    """format_size / format_duration render values the parsers read back."""
    for num_bytes in (0, 512, 1024, 1536, 1024**2, 5 * 1024**3):
        assert parse_size(format_size(num_bytes)) == num_bytes
    for seconds in (0.5, 2.0, 900.0, 5400.0, 86400.0 + 61):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_format_size_is_exact_for_huge_values() -> None:
    """format_size uses integer arithmetic: no float digits appear for huge byte counts."""
    assert format_size(99999999999999999999 * 1024**4) == "99999999999999999999TiB"
    assert format_size(3 * 1024**4 + 1024**4 // 2) == "3.5TiB"
