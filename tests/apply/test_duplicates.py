"""Duplicate ids in one run: counted by IdTracker with their first and last place."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from elax_plan.apply.duplicates import IdTracker
from elax_plan.apply.readers import Location, ResumePoint, open_source
from elax_plan.apply.rows import MappedRow, RowMapper


def rows(url: str, *ids: str, first_line: int = 1) -> list[MappedRow]:
    """Mapped rows with these ids on consecutive lines of ``url``."""
    return [
        MappedRow(Location(url, first_line + i), ResumePoint(0, first_line + i), doc_id, b"{}")
        for i, doc_id in enumerate(ids)
    ]


def test_no_duplicates_counts_rows_and_unique_ids() -> None:
    """Distinct ids: as many unique ids as rows, nothing reported."""
    tracker = IdTracker()
    tracker.add(rows("a.ndjson", "1", "2", "3"))
    assert (tracker.rows, tracker.unique_ids, tracker.duplicate_rows) == (3, 3, 0)
    assert tracker.duplicates() == []


def test_duplicates_within_and_across_files_name_first_and_last_place() -> None:
    """An id twice in one file and again in the next: one entry, 3 rows, first and last line."""
    tracker = IdTracker()
    tracker.add(rows("a.ndjson", "1", "7", "2", "7"))
    tracker.add(rows("b.ndjson", "9", "7", "2"))
    assert (tracker.rows, tracker.unique_ids, tracker.duplicate_rows) == (7, 4, 3)
    assert [d.to_dict() for d in tracker.duplicates()] == [
        {
            "id": "7",
            "rows": 3,
            "first": {"file": "a.ndjson", "line": 2},
            "last": {"file": "b.ndjson", "line": 2},
        },
        {
            "id": "2",
            "rows": 2,
            "first": {"file": "a.ndjson", "line": 3},
            "last": {"file": "b.ndjson", "line": 3},
        },
    ]


def test_an_integer_id_and_its_string_collide(tmp_path: Path) -> None:
    """7 and "7" are one document on the server (integers are sent as decimal strings)."""
    path = tmp_path / "rows.ndjson"
    path.write_bytes(b'{"id":7,"vector":[1]}\n\n{"id":"7","vector":[2]}\n')
    mapper = RowMapper()
    mapped = [mapper.map(raw) for raw in open_source(path.as_uri(), decode=False)]
    tracker = IdTracker()
    tracker.add([m for m in mapped if isinstance(m, MappedRow)])
    (dup,) = tracker.duplicates()
    assert (dup.id, dup.rows, str(dup.first), str(dup.last)) == (
        "7",
        2,
        f"{path.as_uri()}:1",
        f"{path.as_uri()}:3",
    )


def test_parquet_places_are_row_indexes(tmp_path: Path) -> None:
    """Parquet duplicates are named FILE: row N (0-based), like rejected rows."""
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "a"], "vector": [[1.0], [2.0], [3.0]]}), path)
    mapper = RowMapper()
    mapped = [mapper.map(raw) for raw in open_source(path.as_uri())]
    tracker = IdTracker()
    tracker.add([m for m in mapped if isinstance(m, MappedRow)])
    (dup,) = tracker.duplicates()
    assert (str(dup.first), str(dup.last)) == (f"{path.as_uri()}: row 0", f"{path.as_uri()}: row 2")


def test_batches_and_merged_runs_find_every_duplicate() -> None:
    """With small batches (many merges of the sorted runs) the counts match a plain dict's."""
    rng = np.random.default_rng(3)
    ids = [str(x) for x in rng.integers(0, 5_000, size=20_000)]
    tracker = IdTracker(batch_rows=64)
    for start in range(0, len(ids), 100):
        tracker.add(rows("a.ndjson", *ids[start : start + 100], first_line=start + 1))
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    count: dict[str, int] = {}
    for line, doc_id in enumerate(ids, start=1):
        first.setdefault(doc_id, line)
        last[doc_id] = line
        count[doc_id] = count.get(doc_id, 0) + 1
    assert tracker.unique_ids == len(count)
    assert tracker.duplicate_rows == len(ids) - len(count)
    found = {d.id: (d.rows, d.first.line, d.last.line) for d in tracker.duplicates()}
    assert found == {k: (n, first[k], last[k]) for k, n in count.items() if n > 1}
    assert len(tracker._runs) <= 12  # O(log n) sorted runs, not one per batch


def test_distinct_ids_cost_16_bytes_each() -> None:
    """Distinct ids are remembered as a hash and a place: 16 bytes an id, not Python objects."""
    n = 200_000
    chunks = [
        rows("a.ndjson", *(f"doc-{i}" for i in range(s, s + 1000))) for s in range(0, n, 1000)
    ]
    tracker = IdTracker()
    tracemalloc.start()
    try:
        for chunk in chunks:
            tracker.add(chunk)
        tracker.flush()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert tracker.unique_ids == n and tracker.duplicates() == []
    assert tracker.memory_bytes() == 16 * n
    assert held < 20 * n, held  # the arrays, and little else left behind
