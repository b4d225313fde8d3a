"""A small sample of the source, for the planner's estimates: bytes per row, request bytes per row.

Reads a bounded prefix of the first few files (``SAMPLE_BYTES`` of raw bytes, at
most ``SAMPLE_FILES`` files; one row group of a Parquet file), decodes it with the
same codecs apply uses (``source_format``) and sizes the request documents the
row mapper would build. Never reads a whole file. Read-only.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from elax_plan.errors import SourceError
from elax_plan.live._fs import (
    LOCAL_PREFIX,
    describe,
    local_path_of,
    open_fs,
)
from elax_plan.live.model import SourceFile, SourceListing, SourceSample
from elax_plan.source_format import Codec, Refusal, check, decompressed, open_parquet
from elax_plan.spec.model import SourceSpec
from elax_plan.spec.secrets import redact, reveal

SAMPLE_BYTES = 256 * 1024  # raw (possibly compressed) source bytes a sample reads, at most


SAMPLE_TEXT_BYTES = 1024 * 1024  # decompressed NDJSON bytes a sample looks at, at most


MAX_DECODED_BYTES = 64 * 1024 * 1024  # decompressed bytes a compressed prefix is decoded to


MAX_PREFIX_BYTES = 2 * 1024 * 1024  # raw bytes of one file read when SAMPLE_BYTES gave no line


SAMPLE_FILES = 8  # a sample spans at most the first this many files


SAMPLE_ROWS = 5000  # rows turned into request documents, at most


PARQUET_SAMPLE_BYTES = 16 * 1024 * 1024  # compressed bytes of the one row group a sample reads


_COLON_BRACKET = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*\[")


_DECODE_PIECE = 1024  # raw bytes handed to a codec at a time while sampling (see _decode_prefix)


def sample_source(listing: SourceListing, source: SourceSpec) -> SourceSample:
    """Row and request-size estimates from a bounded prefix of the first file(s)."""
    if not listing.files:
        return SourceSample()
    sizer = _DocumentSizer(source)
    if source.format == "parquet":
        return _sample_parquet(listing, source, sizer)
    return _sample_ndjson(listing, source, sizer)


class _Prefix(io.BytesIO):
    """A file's first bytes, handed to a codec at most ``_DECODE_PIECE`` bytes per read.

    Codecs read ahead; small pieces keep the raw bytes a sample counts (``tell()``) within one
    piece of what the decompressed text it yields really took.
    """

    def read(self, size: int | None = -1, /) -> bytes:
        limit = _DECODE_PIECE if size is None or size < 0 else min(size, _DECODE_PIECE)
        return super().read(limit)

    def read1(self, size: int | None = -1, /) -> bytes:
        return self.read(size)


@dataclass(frozen=True, slots=True)
class _Decoded:
    """What a compressed prefix decoded to (see ``_decode_prefix``)."""

    text: bytes  # the first SAMPLE_TEXT_BYTES of it, whose lines are sampled
    total: int  # every decompressed byte the prefix gave (up to MAX_DECODED_BYTES)
    used: int  # raw bytes consumed when the last of them came out
    ended: bool  # the codec's stream ended inside the prefix


def _decode_prefix(url: str, raw: bytes, codec: Codec) -> _Decoded:
    """The decompressed bytes of a file's first ``raw`` bytes, and the raw bytes they took.

    Decodes with ``source_format.decompressed``, the codec apply reads the whole file with; a
    prefix that ends inside the stream is not an error here (it is what a sample reads). The
    whole prefix is decoded (to ``MAX_DECODED_BYTES``), not only the text kept for its lines:
    the ratio of decompressed to compressed bytes is measured over all of it, at the point the
    last output came out. Codecs decode in blocks (bz2: 900 kB of text; zstd: 128 KiB) and read
    ahead, so the raw bytes consumed when the sample stops include a block that gave nothing
    yet; counting them made estimates low (bz2 -21 %, zstd -25 % on compressible rows).
    """
    prefix = _Prefix(raw)
    stream: Any = decompressed(prefix, codec, redact(url), truncated_ok=True)
    kept = bytearray()
    total = used = 0
    ended = False
    while total < MAX_DECODED_BYTES:
        chunk = stream.read1(64 * 1024)
        if not chunk:
            ended = not stream.truncated
            break
        total += len(chunk)
        used = min(prefix.tell(), len(raw))
        if len(kept) < SAMPLE_TEXT_BYTES:
            kept += chunk[: SAMPLE_TEXT_BYTES - len(kept)]
    if ended:
        used = min(prefix.tell(), len(raw))  # the stream's end marker is part of its bytes
    return _Decoded(bytes(kept), total, used, ended)


def _read_prefix(url: str, storage_options: Mapping[str, Any], size: int) -> bytes:
    try:
        if url.startswith(LOCAL_PREFIX):
            with open(local_path_of(url), "rb") as f:
                return f.read(size)
        fs, path = open_fs(url, storage_options)
        data: bytes = fs.cat_file(path, start=0, end=size)
        return data
    except Exception as exc:  # every fsspec backend has its own error types
        raise unreadable(url, exc, "read") from exc


def _sample_ndjson(
    listing: SourceListing, source: SourceSpec, sizer: _DocumentSizer
) -> SourceSample:
    rows = 0
    source_bytes = 0.0
    request_bytes = 0
    budget = SAMPLE_BYTES
    for f in listing.files[:SAMPLE_FILES]:
        if budget <= 0 or rows >= SAMPLE_ROWS:
            break
        codec = codec_of(f.url, source)
        take = min(budget, f.size)
        raw = _read_prefix(f.url, source.storage_options, take)
        if codec is None:
            budget -= len(raw)
            text = raw[:SAMPLE_TEXT_BYTES]
            complete = len(raw) >= f.size and len(text) == len(raw)
            raw_per_text_byte = 1.0
        else:
            decoded = _decode_prefix(f.url, raw, codec)
            if b"\n" not in decoded.text and len(raw) < f.size:
                # Not one whole line yet (a bz2 block of 768-d rows is ~400 kB compressed):
                # read a larger prefix of this file, once, within a fixed bound.
                raw = _read_prefix(f.url, source.storage_options, min(f.size, MAX_PREFIX_BYTES))
                decoded = _decode_prefix(f.url, raw, codec)
            budget -= len(raw)
            text = decoded.text
            complete = (
                len(raw) >= f.size
                and decoded.ended
                and decoded.used >= len(raw)
                and len(text) == decoded.total
            )
            # Compressed bytes per decompressed byte, over everything the prefix decoded.
            raw_per_text_byte = decoded.used / decoded.total if decoded.total else 0.0
        lines = text.split(b"\n")
        if not complete:
            lines.pop()  # a partial last line
        last = len(lines) - 1
        for i, line in enumerate(lines):
            if rows >= SAMPLE_ROWS:
                break
            newline = 1 if i < last or not complete else 0  # complete: the last has none
            source_bytes += (len(line) + newline) * raw_per_text_byte
            if not line.strip():
                continue
            rows += 1
            request_bytes += sizer.line_size(line)
    return SourceSample(
        sampled_rows=rows, sampled_bytes=round(source_bytes), request_bytes=request_bytes
    )


def _sample_parquet(
    listing: SourceListing, source: SourceSpec, sizer: _DocumentSizer
) -> SourceSample:
    options = reveal(source.storage_options)
    for f in listing.files[:SAMPLE_FILES]:
        with open_parquet(f.url, options, block_size=SAMPLE_BYTES) as parquet:
            sample = _sample_parquet_file(f, parquet, sizer)
        if sample is not None:
            return sample
    return SourceSample()


def _sample_parquet_file(f: SourceFile, parquet: Any, sizer: _DocumentSizer) -> SourceSample | None:
    """The first rows of the first row group; None when the file has no rows."""
    meta = parquet.metadata
    total_rows = int(meta.num_rows)
    if total_rows == 0 or meta.num_row_groups == 0:
        return None
    group = meta.row_group(0)
    group_rows = int(group.num_rows)
    if group_rows == 0:
        return None
    columns = sizer.columns(str(n) for n in parquet.schema_arrow.names)
    wanted = set(columns)
    compressed = sum(
        int(group.column(i).total_compressed_size)
        for i in range(group.num_columns)
        if group.column(i).path_in_schema.split(".", 1)[0] in wanted
    )
    bytes_per_row = f.size / total_rows
    n = min(group_rows, SAMPLE_ROWS)
    if compressed > PARQUET_SAMPLE_BYTES:
        # The row group is too big to read for a sample: estimate from the footer alone.
        per_row = int(group.total_byte_size) / group_rows
        return SourceSample(
            sampled_rows=n, sampled_bytes=round(n * bytes_per_row), request_bytes=round(n * per_row)
        )
    try:
        table = parquet.read_row_group(0, columns=columns)
    except Exception as exc:  # pyarrow and fsspec backends raise many types
        raise unreadable(f.url, exc, "read") from exc
    rows = table.slice(0, n).to_pylist()
    return SourceSample(
        sampled_rows=len(rows),
        sampled_bytes=round(len(rows) * bytes_per_row),
        request_bytes=sum(sizer.row_size(row) for row in rows),
    )


class _DocumentSizer:
    """Size of a row as a write-body document ``{"id":…,"vector":[…],"attributes":{…}}``.

    Vectors are sized the way apply sends them: an NDJSON row's own vector text (copied
    into the document), a Parquet vector as float32 numbers (orjson from numpy).
    """

    def __init__(self, source: SourceSpec) -> None:
        self.id_field = source.id_field
        self.vector_field = source.vector_field
        self.vector_key = orjson.dumps(source.vector_field) if source.vector_field else b""
        self.rename = dict(source.attributes.rename)
        include = source.attributes.include
        self.include = None if include is None else frozenset(include)
        try:
            import numpy as np
        except ImportError:  # numpy comes with the [parquet] extra; without it, size floats as-is
            self.np: Any = None
        else:
            self.np = np

    def columns(self, names: Iterable[str]) -> list[str]:
        """The source columns a document is built from."""
        names = list(names)
        if self.include is None:
            return names
        keep = {self.id_field, self.vector_field}
        return [n for n in names if n in keep or self.rename.get(n, n) in self.include]

    def line_size(self, line: bytes) -> int:
        """An NDJSON line's document size; a row apply would reject counts as its own length."""
        fallback = len(line) + 1
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            return fallback
        if not isinstance(row, dict):
            return fallback
        vector = row.get(self.vector_field) if self.vector_field is not None else None
        if isinstance(vector, list):
            span = self._vector_span(line)
            vector_bytes = span if span is not None else len(orjson.dumps(vector))
        else:
            vector_bytes = None
        return self._size(row, vector_bytes, drop_nulls=False, fallback=fallback)

    def row_size(self, row: Mapping[str, Any]) -> int:
        """A Parquet row's document size (nulls are absent; vectors are float32)."""
        vector = row.get(self.vector_field) if self.vector_field is not None else None
        vector_bytes = None
        if vector is not None:
            try:
                if self.np is not None:
                    # 1e39 in a float64 column narrows to inf (apply rejects that row): quietly.
                    with self.np.errstate(over="ignore", invalid="ignore"):
                        array = self.np.asarray(vector, dtype=self.np.float32)
                    vector_bytes = len(orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY))
                else:
                    vector_bytes = len(orjson.dumps(list(vector)))
            except (TypeError, ValueError, orjson.JSONEncodeError):
                return 0  # not a vector of numbers (strings, nulls): apply rejects the row
        return self._size(row, vector_bytes, drop_nulls=True, fallback=0)

    def _vector_span(self, line: bytes) -> int | None:
        """Length of the vector's JSON text in ``line`` (``[`` to the first ``]``), if found."""
        key = self.vector_key
        at = line.find(key)
        while at >= 0:
            bracket = _COLON_BRACKET.match(line, at + len(key))
            if bracket is not None:
                end = line.find(b"]", bracket.end())
                return None if end < 0 else end + 2 - bracket.end()
            at = line.find(key, at + 1)
        return None

    def _size(
        self, row: Mapping[str, Any], vector_bytes: int | None, *, drop_nulls: bool, fallback: int
    ) -> int:
        raw_id = row.get(self.id_field)
        if raw_id is None or isinstance(raw_id, bool):
            return fallback
        doc: dict[str, Any] = {"id": raw_id if isinstance(raw_id, str) else str(raw_id)}
        attributes = {
            self.rename.get(k, k): v
            for k, v in row.items()
            if k != self.id_field and k != self.vector_field and not (drop_nulls and v is None)
        }
        if self.include is not None:
            attributes = {k: v for k, v in attributes.items() if k in self.include}
        if attributes:
            doc["attributes"] = attributes
        try:
            encoded = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
        except (TypeError, orjson.JSONEncodeError):
            return fallback
        size = len(encoded) + 1  # the comma between documents in "upserts"
        if vector_bytes is not None:
            size += len(b',"vector":') + vector_bytes
        return size


def codec_of(url: str, source: SourceSpec) -> Codec | None:
    """The codec apply decodes ``url`` with (``list_source`` refused what does not resolve)."""
    resolved = check(url, source.format, source.compression)
    if isinstance(resolved, Refusal):
        raise resolved.error(redact(url))
    return resolved.codec


def unreadable(uri: str, exc: BaseException, what: str = "list") -> SourceError:
    hint = "Check source.storage_options (endpoint, credentials) and that the source is up."
    if isinstance(exc, PermissionError):
        hint = "Check that the user running elax-plan may read it (permissions, credentials)."
    return SourceError(f"Cannot {what} source {redact(uri)}: {describe(exc)}.", hint=hint)
