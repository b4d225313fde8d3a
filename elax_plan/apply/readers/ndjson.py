"""The NDJSON reader: a file's lines, split from 64 KiB blocks, as rows with resume offsets.

Owns splitting NDJSON into lines (blank lines, CRLF, a BOM, a last line without newline, lines
longer than elacsym's document limit), decoding each with orjson (or leaving it to the row
mapper with ``decode=False``), and resuming at a byte offset. Opening and decompressing the
file is ``source_format.open_stream``, shared with the planner's sampler.

Resume: for a plain file ``ResumePoint.offset`` is the byte offset of the next line and
resuming seeks there (reading only the byte before it, to check that it is a line start). For a
compressed file (gzip, bz2, xz/lzma, zstd) ``offset`` counts *decompressed* bytes: a compressed
stream cannot seek, so resuming decompresses and discards everything up to the offset. The cost
grows with the offset; the rows already written are re-read but not decoded.

A compressed file that ends inside its stream (or is not in its codec's format) is a
``StreamError`` naming the line the reader reached and its decompressed offset; the rows before
that line were read whole.

Must not: validate or map rows (``apply.rows`` does), read a whole file into memory, or do any
per-line work beyond finding the newline (``_ndjson_lines`` is the hot loop of ``apply``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import orjson

from elax_plan.apply.readers.positions import EXCERPT_CHARS, Location, RawRow, ResumePoint
from elax_plan.errors import SourceError
from elax_plan.source_format import ResolvedFormat, StreamError, open_stream

BLOCK_BYTES = 64 << 10
"""NDJSON is read in blocks of this size and split into lines here, not line by line.

Kept below glibc's mmap threshold (128 KiB): with 1 MiB blocks every block and every write
body is a fresh mapping, and the page faults measured 3 µs per 768-d row."""

MAX_LINE_BYTES = 64 << 20
"""elacsym's design limit for one document; a longer line is an invalid row, streamed past."""

_EXCERPT_BYTES = EXCERPT_CHARS * 4  # enough UTF-8 for EXCERPT_CHARS characters
_BOM = b"\xef\xbb\xbf"


def ndjson_rows(
    url: str,
    resolved: ResolvedFormat,
    options: dict[str, Any],
    start: ResumePoint,
    block_bytes: int,
    max_line_bytes: int,
    decode: bool,
) -> Iterator[RawRow]:
    """The rows of one NDJSON file after ``start`` (``open_source`` resolved its codec)."""
    handle = open_stream(url, resolved, options)
    try:
        if start.offset:
            seekable = resolved.codec is None
            _position(url, handle, start.offset, seekable=seekable, block_bytes=block_bytes)
        yield from _ndjson_lines(url, handle, start, block_bytes, max_line_bytes, decode)
    finally:
        handle.close()


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
            try:
                dropped = handle.read(min(block_bytes, remaining))
            except StreamError as exc:
                reached = offset - 1 - remaining
                raise exc.located(f" before the resume offset ({reached:,} bytes in)") from exc
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
        try:
            block = handle.read(block_bytes)
        except StreamError as exc:  # a cut-off or corrupt compressed file: say how far it got
            where = f" at line {line_no + 1:,} ({offset:,} bytes into the decompressed data)"
            raise exc.located(where) from exc
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
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:  # orjson would say "surrogates not allowed"
        return f"line is not valid UTF-8 (byte 0x{line[bad.start]:02x} at byte {bad.start + 1})"
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
