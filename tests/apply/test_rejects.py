"""The invalid-row policy: fail names FILE:LINE and the next step; skip records, counts, limits."""

from __future__ import annotations

import orjson
import pytest

from elax_plan.apply.readers import Location, ResumePoint
from elax_plan.apply.rejects import RejectPolicy, record
from elax_plan.apply.rows import InvalidRow
from elax_plan.errors import InvalidRowError

URL = "s3://datasets/products/part-1.ndjson"


def bad(line: int, reason: str = "id is missing", excerpt: str = '{"vector":[1]}') -> InvalidRow:
    return InvalidRow(Location(URL, line), ResumePoint(line * 10, line), reason, excerpt)


def test_fail_stops_with_file_line_reason_and_next_step() -> None:
    """on_invalid_row: fail raises at once: FILE:LINE: reason, the row, and how to go on."""
    policy = RejectPolicy("fail")
    with pytest.raises(InvalidRowError) as info:
        policy.reject(bad(42))
    message = str(info.value)
    assert message.startswith(f"{URL}:42: id is missing.")
    assert 'Row: {"vector":[1]}' in message
    assert "set ingest.on_invalid_row: skip" in message
    assert (info.value.location, info.value.reason) == (f"{URL}:42", "id is missing")
    assert info.value.exit_code == 1


def test_parquet_rows_are_named_by_row_index() -> None:
    """A Parquet row is FILE: row N."""
    row = InvalidRow(Location("file:///d/x.parquet", None, 7), ResumePoint(row=8), "id is null", "")
    with pytest.raises(InvalidRowError, match=r"^file:///d/x\.parquet: row 7: id is null\."):
        RejectPolicy("fail").reject(row)


def test_skip_writes_a_record_per_row_and_counts() -> None:
    """on_invalid_row: skip writes {file,line,reason,excerpt} lines through the sink and counts."""
    lines: list[bytes] = []
    policy = RejectPolicy("skip", max_invalid_rows=5, sink=lines.append)
    policy.reject(bad(3))
    policy.reject(InvalidRow(Location("f.parquet", None, 9), ResumePoint(row=10), "r", "e"))
    assert policy.count == 2
    assert [orjson.loads(line) for line in lines] == [
        {"file": URL, "line": 3, "reason": "id is missing", "excerpt": '{"vector":[1]}'},
        {"file": "f.parquet", "row": 9, "reason": "r", "excerpt": "e"},
    ]
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)


def test_skip_stops_once_past_the_limit_and_keeps_the_last_row() -> None:
    """The row that passes max_invalid_rows is recorded too, then the run stops."""
    lines: list[bytes] = []
    policy = RejectPolicy("skip", 2, lines.append, sink_name="runs/r1/rejects.ndjson")
    policy.reject(bad(1))
    policy.reject(bad(2))
    with pytest.raises(InvalidRowError) as info:
        policy.reject(bad(3, "vector has 3 numbers, expected 4"))
    assert len(lines) == 3 and policy.count == 3
    message = str(info.value)
    assert message.startswith(f"{URL}:3: vector has 3 numbers, expected 4.")
    assert "invalid row 3, more than ingest.max_invalid_rows (2)" in message
    assert "runs/r1/rejects.ndjson" in message


def test_zero_limit_with_skip_stops_at_the_first_row_but_records_it() -> None:
    """max_invalid_rows: 0 with skip records the first bad row, then stops."""
    lines: list[bytes] = []
    with pytest.raises(InvalidRowError):
        RejectPolicy("skip", 0, lines.append).reject(bad(1))
    assert len(lines) == 1


def test_records_never_carry_huge_rows() -> None:
    """The record holds the row's short excerpt, not the row."""
    out = record(bad(1, excerpt="x" * 200 + "…"))
    assert len(out) < 400


def test_skip_needs_a_sink() -> None:
    """Skipping without somewhere to write the rows is a programming error."""
    with pytest.raises(ValueError, match="needs a sink"):
        RejectPolicy("skip", 10)
