"""Source readers: stream the rows of one NDJSON or Parquet file on any fsspec URL, resumably.

Owns ``open_source``: the one entry that resolves a file's format and codec (through
``source_format.resolve``, exactly as ``validate`` and ``plan`` do) and hands it to its reader
(``ndjson``, ``parquet``). Every row is a ``RawRow`` that knows where it came from
(``Location``) and where reading continues after it (``ResumePoint``, see ``positions``).

The submodules are private; this is the public surface (``__all__``). Must not validate or map
rows (``apply.rows`` does) or decide anything from a file's name on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from elax_plan.apply.readers.ndjson import BLOCK_BYTES, MAX_LINE_BYTES, decode_line, ndjson_rows
from elax_plan.apply.readers.parquet import (
    PARQUET_BATCH_ROWS,
    ParquetBatch,
    ParquetRecord,
    VectorColumn,
    parquet_rows,
)
from elax_plan.apply.readers.positions import EXCERPT_CHARS, Location, RawRow, ResumePoint
from elax_plan.source_format import Format, resolve

__all__ = [
    "BLOCK_BYTES",
    "EXCERPT_CHARS",
    "MAX_LINE_BYTES",
    "PARQUET_BATCH_ROWS",
    "Location",
    "ParquetBatch",
    "ParquetRecord",
    "RawRow",
    "ResumePoint",
    "VectorColumn",
    "decode_line",
    "open_source",
]


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

    ``format`` and ``compression`` are the plan's ``source.format`` and ``source.compression``
    (``"infer"``/``None``: from the name; ``"none"``; or a codec: gzip, bz2, xz, lzma, zstd).
    ``columns`` limits the Parquet columns read (names the file lacks are ignored); NDJSON
    ignores it. ``decode=False`` leaves NDJSON lines undecoded (see ``RawRow``); lines too long
    to be a row are still reported. Raises ``SourceError`` at once when the name and settings
    resolve to nothing elax-plan reads, and while reading when the file cannot be opened or the
    resume point does not fit it.
    """
    resolved = resolve(url, format, compression)
    options = dict(storage_options or {})
    point = start or ResumePoint()
    if resolved.format == "parquet":
        return parquet_rows(url, options, point, columns, batch_rows)
    # The generator is returned, not delegated to: each "yield from" level costs per row.
    return ndjson_rows(url, resolved, options, point, block_bytes, max_line_bytes, decode)
