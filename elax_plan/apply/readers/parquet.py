"""The Parquet reader: a file's rows as light accessors over Arrow record batches.

Owns iterating a Parquet file's record batches from a resume row (whole row groups before it
are skipped through the footer, the first batch is sliced) and the per-batch views the row
mapper reads: ``ParquetBatch``, ``ParquetRecord`` and ``VectorColumn`` (a vector column as
numpy views of Arrow's buffers). Opening the file is ``source_format.open_parquet``, shared
with the planner's sampler.

A page that cannot be decoded (a damaged or cut file) is a ``SourceError`` naming the row
reading had reached, never a bare pyarrow error.

Must not: validate or map rows (``apply.rows`` does), build Python lists of vector numbers
(vectors stay numpy views of Arrow buffers), read a whole file into memory, or import pyarrow
before a Parquet file is read (it is the optional ``[parquet]`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from elax_plan.apply.readers.positions import EXCERPT_CHARS, Location, RawRow, ResumePoint
from elax_plan.errors import SourceError
from elax_plan.source_format import open_parquet, pyarrow_parquet

PARQUET_BATCH_ROWS = 2048


def _pyarrow() -> Any:
    pyarrow_parquet()  # the install hint when pyarrow is missing
    import pyarrow as pa

    return pa


@dataclass(slots=True)
class VectorColumn:
    """One batch's vector column as numpy, sharing Arrow's values buffer when it can.

    ``values`` holds every row's numbers back to back (float32 or float64); row ``i`` is
    ``values[starts[i]:starts[i] + lengths[i]]``. ``matrix`` is the same data as an
    ``(rows, dims)`` view when every row has the same length and none is null. ``error`` is set
    when the column cannot hold vectors at all (then every row is invalid for that reason).
    """

    values: np.ndarray[Any, Any]
    starts: np.ndarray[Any, np.dtype[np.int64]]
    lengths: np.ndarray[Any, np.dtype[np.int64]]
    row_null: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    item_null: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    matrix: np.ndarray[Any, Any] | None = None
    error: str | None = None

    def row(self, i: int) -> np.ndarray[Any, Any] | None:
        """Row ``i``'s numbers (a view, not a copy); ``None`` if the vector is null."""
        if self.row_null is not None and self.row_null[i]:
            return None
        view: np.ndarray[Any, Any]
        if self.matrix is not None:
            view = self.matrix[i]
        else:
            start = int(self.starts[i])
            view = self.values[start : start + int(self.lengths[i])]
        return view

    def null_items(self, i: int) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Positions of null numbers inside row ``i``'s vector."""
        if self.item_null is None:
            return np.empty(0, dtype=np.intp)
        start = int(self.starts[i])
        return np.flatnonzero(self.item_null[start : start + int(self.lengths[i])])


@dataclass(slots=True)
class ParquetBatch:
    """One Arrow record batch of a Parquet file, with per-batch conversions computed once.

    ``memo`` is scratch space for per-batch work of the row mapper (e.g. serialised vectors), so
    that it runs once per batch, not once per row.
    """

    url: str
    batch: Any  # pyarrow.RecordBatch
    first_row: int
    memo: dict[Any, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.batch.schema.names)

    def has(self, name: str) -> bool:
        return bool(self.batch.schema.get_field_index(name) >= 0)

    def column(self, name: str) -> list[Any]:
        """The column's values as Python objects (memoised per batch)."""
        key = ("column", name)
        values = self.memo.get(key)
        if values is None:
            values = self.batch.column(name).to_pylist()
            self.memo[key] = values
        return values  # type: ignore[no-any-return]

    def vectors(self, name: str) -> VectorColumn:
        """The column as a ``VectorColumn`` (memoised per batch)."""
        key = ("vectors", name)
        column = self.memo.get(key)
        if column is None:
            column = _vector_column(self.batch.column(name))
            self.memo[key] = column
        return column


@dataclass(slots=True)
class ParquetRecord:
    """Row ``index`` of a ``ParquetBatch``: a light accessor, no per-row copies."""

    batch: ParquetBatch
    index: int

    def get(self, name: str, default: Any = None) -> Any:
        if not self.batch.has(name):
            return default
        return self.batch.column(name)[self.index]

    def vector(self, name: str) -> np.ndarray[Any, Any] | None:
        """The row's vector as a numpy view of the column's values buffer (None if null)."""
        return self.batch.vectors(name).row(self.index)

    def excerpt(self) -> str:
        """A short, readable rendering of the row for reject records (vectors abbreviated)."""
        out: dict[str, Any] = {}
        for name in self.batch.names:
            value = self.batch.batch.column(name)[self.index].as_py()
            if isinstance(value, list) and len(value) > 8:
                value = [*value[:4], f"… {len(value)} numbers"]
            out[name] = value
        return orjson.dumps(out, default=str).decode()[:EXCERPT_CHARS]


def _vector_column(column: Any) -> VectorColumn:
    pa = _pyarrow()
    empty = np.empty(0, dtype=np.int64)
    kind = column.type
    n = len(column)
    if not (
        pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)
    ):
        return VectorColumn(np.empty(0), empty, empty, error=f"column has type {kind}, not a list")
    child_type = kind.value_type
    if not (pa.types.is_floating(child_type) or pa.types.is_integer(child_type)):
        return VectorColumn(
            np.empty(0), empty, empty, error=f"column has type {kind}, not a list of numbers"
        )
    row_null = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
    if pa.types.is_fixed_size_list(kind):
        dims = kind.list_size
        child = column.values.slice(column.offset * dims, n * dims)
        starts = np.arange(n, dtype=np.int64) * dims
        lengths = np.full(n, dims, dtype=np.int64)
    else:
        offsets = column.offsets.to_numpy().astype(np.int64)
        base = int(offsets[0]) if n else 0
        child = column.values.slice(base, int(offsets[-1]) - base if n else 0)
        starts = offsets[:-1] - base
        lengths = np.diff(offsets)
    if child_type not in (pa.float32(), pa.float64()):
        child = child.cast(pa.float64())  # float16 and integers: exact in float64
    item_null = child.is_null().to_numpy(zero_copy_only=False) if child.null_count else None
    values = child.to_numpy(zero_copy_only=False)
    out = VectorColumn(values, starts, lengths, row_null, item_null)
    if n and (lengths == lengths[0]).all():
        dims = int(lengths[0])
        out.matrix = values[: n * dims].reshape(n, dims)
    return out


def parquet_rows(
    url: str,
    options: dict[str, Any],
    start: ResumePoint,
    columns: Sequence[str] | None,
    batch_rows: int,
) -> Iterator[RawRow]:
    """The rows of one Parquet file from ``start`` (``open_source`` checks the format)."""
    with open_parquet(url, options) as parquet:
        yield from _parquet_batches(url, parquet, start, columns, batch_rows)


def _parquet_batches(
    url: str, parquet: Any, start: ResumePoint, columns: Sequence[str] | None, batch_rows: int
) -> Iterator[RawRow]:
    metadata = parquet.metadata
    total = metadata.num_rows
    if start.row > total:
        raise SourceError(
            f"Cannot resume {url} at row {start.row:,}: the file has {total:,} rows.",
            "The file changed since it was partly written.",
            "Run elax-plan plan again: a changed file is rewritten from its start.",
        )
    # Skip whole row groups before the resume row using only the footer.
    first_group, group_start = 0, 0
    while first_group < metadata.num_row_groups:
        rows = metadata.row_group(first_group).num_rows
        if group_start + rows > start.row:
            break
        group_start += rows
        first_group += 1
    if first_group >= metadata.num_row_groups:
        return
    names = set(parquet.schema_arrow.names)
    selected = None if columns is None else [c for c in dict.fromkeys(columns) if c in names]
    skip = start.row - group_start
    index = group_start
    batches = parquet.iter_batches(
        batch_size=batch_rows,
        row_groups=range(first_group, metadata.num_row_groups),
        columns=selected,
    )
    while True:
        try:
            record_batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # pyarrow: OSError, ArrowInvalid… for a damaged page
            said = str(exc).strip().rstrip(".")
            raise SourceError(
                f"Cannot read {url} at row {index:,}: its Parquet data cannot be decoded "
                f"({type(exc).__name__}: {said}).",
                "The file is damaged or truncated; the rows before that one were read.",
                "Replace it with a good copy and run elax-plan plan again.",
            ) from exc
        rb = record_batch
        if skip:
            if skip >= rb.num_rows:
                skip -= rb.num_rows
                index += rb.num_rows
                continue
            rb = rb.slice(skip)
            index += skip
            skip = 0
        batch = ParquetBatch(url, rb, index)
        for i in range(rb.num_rows):
            row = index + i
            yield RawRow(
                Location(url, None, row), ResumePoint(0, 0, row + 1), ParquetRecord(batch, i)
            )
        index += rb.num_rows
