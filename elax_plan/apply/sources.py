"""Source readers: stream rows of NDJSON and Parquet files on any fsspec URL, with resume points.

Owns opening a source file (format and compression from the extension unless given), splitting
NDJSON into lines and decoding each with orjson, iterating Parquet record batches, and the
position bookkeeping: every ``RawRow`` knows where it came from (``Location``) and where reading
continues after it (``ResumePoint``).

Resume semantics:

- Plain NDJSON: ``ResumePoint.offset`` is the byte offset of the next line; resuming seeks there
  (nothing before it is read, except the one byte before it, to check that it is a line start).
- Compressed NDJSON (``.gz``, ``.bz2``, ``.xz``, ``.zst``): ``offset`` counts *decompressed*
  bytes. A compressed stream cannot seek, so resuming decompresses and discards everything up to
  the offset: cost grows with the offset, and it re-reads (without decoding) the rows already
  written.
- Parquet: ``ResumePoint.row`` is the index of the next row; whole row groups before it are
  skipped through the file's metadata and the first batch is sliced.

Must not: validate or map rows (``rows`` does), build Python lists of vector numbers for Parquet
(vectors stay numpy views of Arrow buffers), read a whole file into memory, or import pyarrow
unless a Parquet file is read (it is the optional ``[parquet]`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import fsspec
import numpy as np
import orjson

from elax_plan.errors import SourceError
from elax_plan.live.source import codec_install_hint

Format = Literal["ndjson", "parquet"]

BLOCK_BYTES = 64 << 10
"""NDJSON is read in blocks of this size and split into lines here, not line by line.

Kept below glibc's mmap threshold (128 KiB): with 1 MiB blocks every block and every write
body is a fresh mapping, and the page faults measured 3 µs per 768-d row."""

MAX_LINE_BYTES = 64 << 20
"""elacsym's design limit for one document; a longer line is an invalid row, streamed past."""

PARQUET_BATCH_ROWS = 2048

EXCERPT_CHARS = 200
_EXCERPT_BYTES = EXCERPT_CHARS * 4  # enough UTF-8 for EXCERPT_CHARS characters

_NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".json")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
_BOM = b"\xef\xbb\xbf"
_PARQUET_HINT = "pip install 'elax-plan[parquet]'"


# Location and ResumePoint are values: never mutated once built. They are not frozen because
# one of each is built per row on the hot path, and a frozen dataclass's __init__ costs 3x more.


@dataclass(slots=True)
class Location:
    """Where a row is: the file URL and a 1-based ``line`` (NDJSON) or 0-based ``row`` (Parquet)."""

    url: str
    line: int | None = None
    row: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.url}:{self.line}"
        return f"{self.url}: row {self.row}"

    def to_dict(self) -> dict[str, Any]:
        """``{"file": url, "line": n}`` or ``{"file": url, "row": n}``."""
        if self.line is not None:
            return {"file": self.url, "line": self.line}
        return {"file": self.url, "row": self.row}


@dataclass(slots=True)
class ResumePoint:
    """Where reading continues: everything before it has been consumed.

    NDJSON: ``offset`` is the byte offset of the next line (in decompressed bytes for a
    compressed file) and ``line`` the number of lines before it, blank ones included.
    Parquet: ``row`` is the index of the next row. Unused fields stay 0.
    """

    offset: int = 0
    line: int = 0
    row: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"offset": self.offset, "line": self.line, "row": self.row}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ResumePoint:
        return cls(
            offset=int(raw.get("offset", 0)),
            line=int(raw.get("line", 0)),
            row=int(raw.get("row", 0)),
        )


@dataclass(slots=True)
class RawRow:
    """One row as read: its place, the resume point after it, and the decoded record.

    ``record`` is a ``dict`` for NDJSON and a ``ParquetRecord`` for Parquet; it is ``None`` when
    the line could not be decoded, and ``error`` then says why (the row is invalid, not fatal).
    ``text`` is the NDJSON line's bytes (without the newline), ``None`` for Parquet. An NDJSON
    row read with ``decode=False`` has ``record`` and ``error`` both ``None``: it is not decoded
    yet, and ``decode_line`` does it (the row mapper decodes the vector faster on its own).
    Not frozen: one is built per row on the hot path.
    """

    location: Location
    resume: ResumePoint
    record: dict[str, Any] | ParquetRecord | None
    text: bytes | None = None
    error: str | None = None


def detect_format(url: str) -> tuple[Format, str | None]:
    """The format and compression a file's name implies, e.g. ``x.jsonl.gz`` → (ndjson, gzip)."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    compression = None
    for suffix, codec in _COMPRESSION_SUFFIXES.items():
        if name.endswith(suffix):
            compression = codec
            name = name[: -len(suffix)]
            break
    if name.endswith(_NDJSON_SUFFIXES):
        return "ndjson", compression
    if name.endswith(_PARQUET_SUFFIXES) and compression is None:
        return "parquet", None
    raise SourceError(
        f"Cannot tell the format of {url} from its name.",
        "Known endings: .ndjson, .jsonl, .json (optionally .gz, .zst, .bz2, .xz), .parquet, .pq.",
        "Set source.format (ndjson or parquet) in the plan.",
    )


def open_source(
    url: str,
    format: Format | None = None,
    compression: str | None = "infer",
    storage_options: dict[str, Any] | None = None,
    start: ResumePoint | None = None,
    *,
    columns: Sequence[str] | None = None,
    block_bytes: int = BLOCK_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
    batch_rows: int = PARQUET_BATCH_ROWS,
    decode: bool = True,
) -> Iterator[RawRow]:
    """Stream the rows of one source file, starting after ``start`` (from the beginning if None).

    ``compression`` is ``"infer"``/``None`` (from the name), ``"none"``, or an fsspec codec name
    (``gzip``, ``bz2``, ``xz``, ``zstd``). ``columns`` limits the Parquet columns read (names the
    file lacks are ignored); NDJSON ignores it. ``decode=False`` leaves NDJSON lines undecoded
    (see ``RawRow``); lines too long to be a row are still reported. Raises ``SourceError`` when
    the file cannot be opened or the resume point does not fit the file.
    """
    inferred_format, inferred_codec = _infer(url, format)
    fmt = format or inferred_format
    codec = inferred_codec if compression in (None, "infer") else compression
    if codec == "none":
        codec = None
    options = dict(storage_options or {})
    point = start or ResumePoint()
    if fmt == "parquet":
        if codec is not None:
            raise SourceError(
                f"Cannot read {url}: Parquet files are compressed inside; "
                f"compression {codec!r} does not apply.",
                hint="Remove source.compression for Parquet sources.",
            )
        return _parquet_rows(url, options, point, columns, batch_rows)
    if fmt == "ndjson":
        # The generator is returned, not delegated to: each "yield from" level costs per row.
        return _ndjson_rows(url, codec, options, point, block_bytes, max_line_bytes, decode)
    raise SourceError(f"Unknown source format {fmt!r} for {url}.", hint="Use ndjson or parquet.")


def _infer(url: str, format: Format | None) -> tuple[Format, str | None]:
    try:
        return detect_format(url)
    except SourceError:
        if format is None:
            raise
        return format, None


# --- NDJSON ----------------------------------------------------------------------------------


def _open_ndjson(url: str, codec: str | None, options: dict[str, Any]) -> IO[bytes]:
    try:
        opened = fsspec.open(url, mode="rb", compression=codec, **options)
    except ValueError as exc:  # fsspec: "Compression type zstd not supported"
        hint = (
            f"Install its package: {codec_install_hint(codec)}."
            if codec == "zstd"
            else "Check source.compression."
        )
        raise SourceError(f"Cannot read {url}: {exc}.", hint=hint) from exc
    try:
        return opened.open()  # type: ignore[no-any-return]
    except (FileNotFoundError, OSError) as exc:
        raise SourceError(
            f"Cannot open source file {url}: {exc}.",
            hint="Check source.uri and source.storage_options.",
        ) from exc


def _position(
    url: str, handle: IO[bytes], offset: int, *, seekable: bool, block_bytes: int
) -> None:
    """Move to ``offset``, checking that the byte before it ends a line."""
    if seekable:
        handle.seek(offset - 1)
    else:
        # A compressed stream cannot seek: decompress and drop everything before the offset.
        remaining = offset - 1
        while remaining:
            dropped = handle.read(min(block_bytes, remaining))
            if not dropped:
                break
            remaining -= len(dropped)
    before = handle.read(1)
    if before != b"\n":
        what = "past the end of the file" if not before else "not at the start of a line"
        raise SourceError(
            f"Cannot resume {url} at byte {offset:,}: that offset is {what}.",
            "The file changed since it was partly written.",
            "Run elax-plan plan again: a changed file is rewritten from its start.",
        )


def _ndjson_rows(
    url: str,
    codec: str | None,
    options: dict[str, Any],
    start: ResumePoint,
    block_bytes: int,
    max_line_bytes: int,
    decode: bool,
) -> Iterator[RawRow]:
    handle = _open_ndjson(url, codec, options)
    try:
        if start.offset:
            _position(url, handle, start.offset, seekable=codec is None, block_bytes=block_bytes)
        yield from _ndjson_lines(url, handle, start, block_bytes, max_line_bytes, decode)
    finally:
        handle.close()


def _ndjson_lines(
    url: str,
    handle: IO[bytes],
    start: ResumePoint,
    block_bytes: int,
    max_line_bytes: int,
    decode: bool,
) -> Iterator[RawRow]:
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    offset = start.offset
    line_no = start.line
    pending: list[bytes] = []  # the start of a line that continues in the next block
    pending_bytes = 0
    skipping = False  # inside a line longer than max_line_bytes: count it, do not keep it
    at_start = offset == 0
    while True:
        block = handle.read(block_bytes)
        if not block:
            break
        if at_start:
            at_start = False
            if block.startswith(_BOM):
                block = block[3:]
                offset += 3
        pos = 0
        if pending or skipping:
            newline = block.find(b"\n")
            if newline < 0:
                pending_bytes += len(block)
                if not skipping:
                    pending.append(block)
                    if pending_bytes > max_line_bytes:
                        skipping, pending = True, [b"".join(pending)[:_EXCERPT_BYTES]]
                continue
            pos = newline + 1
            line_no += 1
            size = pending_bytes + newline
            offset += size + 1
            if skipping or size > max_line_bytes:
                pending.append(block[: min(newline, _EXCERPT_BYTES)])
                yield _too_long(url, line_no, offset, pending, size)
            else:
                pending.append(block[:newline])
                row = _row(url, b"".join(pending), line_no, offset, decode)
                if row is not None:
                    yield row
            pending, pending_bytes, skipping = [], 0, False
        # Lines are cut one at a time with find(): bytes.split() would hold a whole block's
        # lines in fresh memory at once, which measured twice as slow per line.
        find = block.find
        while True:
            newline = find(b"\n", pos)
            if newline < 0:
                break
            line = block[pos:newline]
            pos = newline + 1
            line_no += 1
            offset += len(line) + 1
            if not line or line.isspace():
                continue  # blank lines count for line numbers, but are not rows
            if len(line) > max_line_bytes:
                yield _too_long(url, line_no, offset, [line], len(line))
                continue
            if not decode:
                yield RawRow(Location(url, line_no), ResumePoint(offset, line_no), None, line)
                continue
            try:
                record = loads(line)
            except decode_error:
                record = None
            if type(record) is dict:
                yield RawRow(Location(url, line_no), ResumePoint(offset, line_no), record, line)
            else:
                row = _row(url, line, line_no, offset, decode)  # says why it is not a row
                if row is not None:
                    yield row
        if pos < len(block):
            tail = block[pos:]
            pending, pending_bytes = [tail], len(tail)
            if pending_bytes > max_line_bytes:
                skipping, pending = True, [tail[:_EXCERPT_BYTES]]
    if pending or skipping:
        # The last line has no newline: it is a row all the same.
        line_no += 1
        offset += pending_bytes
        if skipping:
            yield _too_long(url, line_no, offset, pending, pending_bytes)
        else:
            row = _row(url, b"".join(pending), line_no, offset, decode)
            if row is not None:
                yield row


def _row(url: str, line: bytes, line_no: int, offset: int, decode: bool) -> RawRow | None:
    """The slow path for one line: None if blank, else a row (an invalid one says why)."""
    if not line or line.isspace():
        return None
    location, resume = Location(url, line_no), ResumePoint(offset, line_no)
    if not decode:
        return RawRow(location, resume, None, line)
    record, error = decode_line(line)
    return RawRow(location, resume, record, line, error)


def decode_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """One NDJSON line as ``(record, None)``, or ``(None, why it is not a row)``."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return None, _json_error(line, exc)
    if type(record) is not dict:
        return None, f"line is a JSON {_json_kind(record)}, not an object"
    return record, None


def _too_long(url: str, line_no: int, offset: int, parts: list[bytes], size: int) -> RawRow:
    head = b"".join(parts)[:_EXCERPT_BYTES]
    reason = f"line is {size:,} bytes, longer than elacsym's 64 MiB document limit"
    return RawRow(Location(url, line_no), ResumePoint(offset, line_no), None, head, reason)


def _json_error(line: bytes, exc: orjson.JSONDecodeError) -> str:
    if b"NaN" in line or b"Infinity" in line:
        return f"line is not valid JSON (NaN and Infinity are not JSON numbers): {exc}"
    return f"line is not valid JSON: {exc}"


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


# --- Parquet ---------------------------------------------------------------------------------


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise SourceError(
            "Reading Parquet sources needs pyarrow, which is not installed.",
            hint=f"Install the Parquet extra: {_PARQUET_HINT}",
        ) from exc
    return pa, pq


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
    pa, _ = _pyarrow()
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


def _parquet_rows(
    url: str,
    options: dict[str, Any],
    start: ResumePoint,
    columns: Sequence[str] | None,
    batch_rows: int,
) -> Iterator[RawRow]:
    _, pq = _pyarrow()
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
        local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        # Local files go to Arrow by path: its native reader beats reads through Python.
        handle: Any = None if local else fs.open(path, "rb")
        parquet = pq.ParquetFile(path if local else handle)
    except (FileNotFoundError, OSError) as exc:
        raise SourceError(
            f"Cannot open source file {url}: {exc}.",
            hint="Check source.uri and source.storage_options.",
        ) from exc
    except Exception as exc:  # pyarrow.lib.ArrowInvalid: not a Parquet file
        raise SourceError(
            f"Cannot read {url} as Parquet: {exc}.",
            hint="Check the file, or set source.format.",
        ) from exc
    try:
        yield from _parquet_batches(url, parquet, start, columns, batch_rows)
    finally:
        parquet.close()
        if handle is not None:
            handle.close()


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
    for record_batch in parquet.iter_batches(
        batch_size=batch_rows,
        row_groups=range(first_group, metadata.num_row_groups),
        columns=selected,
    ):
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
