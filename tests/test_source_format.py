"""The one table of source endings: resolving names and settings, refusals, decoding streams."""

from __future__ import annotations

import gzip
import io
from typing import Any

import pytest

from elax_plan.errors import SourceError
from elax_plan.source_format import (
    CODEC_SUFFIXES,
    FORMAT_SUFFIXES,
    SUPPORTED_ENDINGS,
    Refusal,
    ResolvedFormat,
    check,
    decompressed,
    resolve,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://b/x.ndjson", ("ndjson", None)),
        ("file:///d/x.JSONL", ("ndjson", None)),
        ("x.json.gz", ("ndjson", "gzip")),
        ("x.jsonl.gzip", ("ndjson", "gzip")),
        ("x.ndjson.zst", ("ndjson", "zstd")),
        ("x.ndjson.zstd", ("ndjson", "zstd")),
        ("x.jsonl.bz2", ("ndjson", "bz2")),
        ("x.ndjson.xz", ("ndjson", "xz")),
        ("x.ndjson.lzma", ("ndjson", "lzma")),
        ("s3://b/part-0.parquet", ("parquet", None)),
        ("x.parq", ("parquet", None)),
        ("x.pq", ("parquet", None)),
        ("data/*.jsonl.gz", ("ndjson", "gzip")),
        ("https://h/x.jsonl.gz?sig=a.b", ("ndjson", "gzip")),
    ],
)
def test_format_and_codec_come_from_the_name(url: str, expected: tuple[str, str | None]) -> None:
    """Every ending in the table resolves, case-insensitively, globs and http queries included."""
    assert resolve(url) == ResolvedFormat(*expected)  # type: ignore[arg-type]


def test_the_table_lists_each_ending_once_in_the_supported_sentence() -> None:
    """The sentence the refusals quote names every format and codec ending."""
    for suffix in (*FORMAT_SUFFIXES, *CODEC_SUFFIXES):
        assert suffix in SUPPORTED_ENDINGS


def test_explicit_settings_override_the_name() -> None:
    """source.format wins over the name; compression none/gzip wins over a codec ending."""
    assert resolve("rows.txt", "ndjson") == ResolvedFormat("ndjson", None)
    assert resolve("part-00000", "parquet") == ResolvedFormat("parquet", None)
    assert resolve("rows.ndjson.gz", None, "none") == ResolvedFormat("ndjson", None)
    assert resolve("rows.ndjson", None, "gzip") == ResolvedFormat("ndjson", "gzip")
    assert resolve("rows.txt.gz", "ndjson") == ResolvedFormat("ndjson", "gzip")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("data.jsonl.zip", "ends in .zip (zip)"),
        ("data.jsonl.snappy", "ends in .snappy (snappy)"),
        ("data.jsonl.sz", "ends in .sz (snappy)"),
        ("data.jsonl.lz4", "ends in .lz4 (lz4)"),
        ("data.csv", "ends in .csv, which names no format"),
        ("data.txt", "ends in .txt, which names no format"),
        ("data.jsonl.gzip.bak", "ends in .bak, which names no format"),
        ("data/*", "has no ending"),
        ("data.parquet.gz", "is Parquet compressed as gzip"),
    ],
)
def test_unsupported_names_are_refused_with_the_supported_endings(name: str, fragment: str) -> None:
    """A name elax-plan cannot read is refused by name, listing what it reads and what to do."""
    with pytest.raises(SourceError) as raised:
        resolve(f"s3://b/{name}")
    message = raised.value.message
    assert message.startswith(f"Cannot read s3://b/{name}: it ")
    assert fragment in message
    assert f"elax-plan reads {SUPPORTED_ENDINGS}." in message
    assert raised.value.hint and raised.value.hint.endswith(".")


def test_a_codec_ending_is_refused_even_with_an_explicit_format() -> None:
    """source.format says how to read rows, not how to decompress: .zip is still refused."""
    result = check("data.jsonl.zip", "ndjson")
    assert isinstance(result, Refusal) and result.key == "source.uri"


def test_unsupported_settings_name_the_plan_key() -> None:
    """An unknown codec, an unknown format or a codec for Parquet name the key to change."""
    for args, key in (
        (("x.ndjson", None, "lz4"), "source.compression"),
        (("x.ndjson", "csv", "infer"), "source.format"),
        (("x.parquet", None, "gzip"), "source.compression"),
    ):
        result = check(*args)
        assert isinstance(result, Refusal) and result.key == key, args


def test_decoding_errors_name_the_file_and_codec() -> None:
    """Bytes that are not gzip: a SourceError naming the URL, the codec and source.compression."""
    stream = decompressed(io.BytesIO(b'{"id": 1}\n' * 10), "gzip", "s3://b/x.ndjson.gz")
    with pytest.raises(SourceError) as raised:
        stream.read(1024)
    assert "s3://b/x.ndjson.gz as gzip" in raised.value.message
    assert "source.compression" in raised.value.message


def test_a_truncated_stream_is_an_error_unless_sampling() -> None:
    """A compressed file cut short fails apply's read, but ends a sample quietly."""
    rows = b"".join(b'{"id": %d}\n' % i for i in range(10_000))
    packed = gzip.compress(rows)[:500]
    stream = decompressed(io.BytesIO(packed), "gzip", "x.ndjson.gz")
    with pytest.raises(SourceError, match="truncated"):
        while stream.read(1 << 16):
            pass
    sample: Any = decompressed(io.BytesIO(packed), "gzip", "x.ndjson.gz", truncated_ok=True)
    text = b""
    while chunk := sample.read1(1 << 16):
        text += chunk
    assert rows.startswith(text) and len(text) > 500 and sample.truncated is True


def test_concatenated_gzip_members_read_as_one_stream() -> None:
    """gzip -c a b > c: both members are read, as apply and the sampler both need."""
    packed = gzip.compress(b"a\n") + gzip.compress(b"b\n")
    assert decompressed(io.BytesIO(packed), "gzip", "x.gz").read() == b"a\nb\n"
