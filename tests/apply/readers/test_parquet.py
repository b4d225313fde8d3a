"""The Parquet reader on real files: row indexes, numpy vector views, resume, column pruning."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest

from elax_plan.apply.readers import Location, ParquetRecord, ResumePoint, open_source
from elax_plan.errors import SourceError
from tests.apply.readers.files import parquet_file, parquet_ids, write


def test_parquet_rows_carry_row_indexes_and_numpy_vector_views(tmp_path: Path) -> None:
    """Rows come with 0-based indexes; vectors are float32 views of Arrow's buffer, not lists."""
    url = parquet_file(tmp_path)
    rows = list(open_source(url, batch_rows=4))
    assert parquet_ids(rows) == list(range(25))
    assert [r.location for r in rows] == [Location(url, None, i) for i in range(25)]
    assert [r.resume.row for r in rows] == list(range(1, 26))
    record = rows[7].record
    assert isinstance(record, ParquetRecord)
    vector = record.vector("vector")
    assert vector is not None and vector.dtype == np.float32 and not vector.flags.owndata
    assert vector.tolist() == [28.0, 29.0, 30.0, 31.0]
    assert record.get("title") == "t7"


@pytest.mark.parametrize("start", [0, 1, 9, 10, 11, 19, 20, 24, 25])
def test_parquet_resume_across_row_group_boundaries(tmp_path: Path, start: int) -> None:
    """Resuming at row N yields rows N.. exactly, whatever the row groups and batches."""
    url = parquet_file(tmp_path, rows=25, group=10)
    rows = list(open_source(url, start=ResumePoint(row=start), batch_rows=3))
    assert parquet_ids(rows) == list(range(start, 25))
    assert [r.location.row for r in rows] == list(range(start, 25))


def test_parquet_resume_past_the_end_is_refused(tmp_path: Path) -> None:
    """A resume row beyond the file means it changed: a clear error."""
    url = parquet_file(tmp_path, rows=5)
    with pytest.raises(SourceError, match=r"row 6: the file has 5 rows"):
        list(open_source(url, start=ResumePoint(row=6)))


def test_parquet_reads_only_the_columns_asked_for(tmp_path: Path) -> None:
    """columns prunes what is read; names the file lacks are ignored."""
    url = parquet_file(tmp_path)
    rows = list(open_source(url, columns=["id", "vector", "absent"]))
    record = rows[0].record
    assert isinstance(record, ParquetRecord)
    assert record.batch.names == ["id", "vector"]


def test_parquet_on_memory_filesystem(tmp_path: Path) -> None:
    """Parquet on a non-local store is read through fsspec."""
    local = Path(parquet_file(tmp_path).removeprefix("file://"))
    url = f"memory://src-{uuid.uuid4().hex}/rows.parquet"
    with fsspec.open(url, "wb") as f:
        f.write(local.read_bytes())
    rows = list(open_source(url, start=ResumePoint(row=12)))
    assert parquet_ids(rows) == list(range(12, 25))


def test_parquet_refuses_a_compression_setting(tmp_path: Path) -> None:
    """compression applies to NDJSON only."""
    with pytest.raises(SourceError, match="compression 'gzip' does not apply"):
        open_source(parquet_file(tmp_path), compression="gzip")


def test_not_a_parquet_file_is_a_source_error(tmp_path: Path) -> None:
    """A file named .parquet that is not Parquet is an error naming it."""
    url = write(tmp_path, "bad.parquet", b"not parquet at all")
    with pytest.raises(SourceError, match=r"Cannot read .*bad\.parquet as Parquet"):
        list(open_source(url))


def test_missing_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pyarrow, reading Parquet says: pip install 'elax-plan[parquet]'."""
    url = parquet_file(tmp_path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(SourceError, match=r"pip install 'elax-plan\[parquet\]'"):
        list(open_source(url))
