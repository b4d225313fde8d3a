"""The NDJSON reader on real files: lines, offsets, resume, gzip/bz2/xz/zstd, file/memory/s3."""

from __future__ import annotations

import bz2
import gzip
import lzma
import uuid
from pathlib import Path
from typing import Any

import fsspec
import orjson
import pytest

from elax_plan.apply.readers import Location, ResumePoint, open_source
from elax_plan.errors import SourceError
from tests.apply.readers.files import ROWS, ids, ndjson, write
from tests.conftest import S3Server, make_bucket


def test_unknown_extension_asks_for_source_format(tmp_path: Path) -> None:
    """A name without a known ending is an error naming source.format."""
    url = write(tmp_path, "rows.txt", ndjson(*ROWS))
    with pytest.raises(SourceError, match=r"rows\.txt.*source\.format"):
        open_source(url)
    assert len(list(open_source(url, format="ndjson"))) == 10


def test_ndjson_rows_carry_line_numbers_and_resume_offsets(tmp_path: Path) -> None:
    """Each row has its 1-based line and the byte offset + line number after it."""
    data = ndjson(*ROWS)
    url = write(tmp_path, "rows.ndjson", data)
    rows = list(open_source(url))
    assert ids(rows) == list(range(10))
    assert [r.location for r in rows] == [Location(url, i + 1) for i in range(10)]
    ends = [i + 1 for i, b in enumerate(data) if b == ord("\n")]
    assert [r.resume for r in rows] == [ResumePoint(e, i + 1) for i, e in enumerate(ends)]
    assert rows[3].text == orjson.dumps(ROWS[3])


def test_blank_lines_crlf_bom_and_a_last_line_without_newline(tmp_path: Path) -> None:
    """Blank lines count for line numbers but are not rows; CRLF, BOM and no final \\n work."""
    data = b"\xef\xbb\xbf" + b'{"id":1}\r\n\n   \n{"id":2}\r\n\r\n{"id":3}'
    url = write(tmp_path, "rows.ndjson", data)
    rows = list(open_source(url))
    assert ids(rows) == [1, 2, 3]
    assert [r.location.line for r in rows] == [1, 4, 6]
    assert rows[-1].resume == ResumePoint(len(data), 6)


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 16])
def test_lines_spanning_blocks_read_the_same(tmp_path: Path, block_bytes: int) -> None:
    """The block size never changes the rows, lines or offsets read."""
    data = ndjson(*ROWS) + b"\n" + orjson.dumps({"id": "last"})
    url = write(tmp_path, "rows.ndjson", data)
    expected = list(open_source(url))
    got = list(open_source(url, block_bytes=block_bytes))
    assert [(r.location, r.resume, r.record) for r in got] == [
        (r.location, r.resume, r.record) for r in expected
    ]
    assert ids(got)[-1] == "last"


def test_malformed_and_non_object_lines_are_invalid_rows_not_crashes(tmp_path: Path) -> None:
    """A line that is not JSON, or not an object, is a row with an error; reading goes on."""
    data = b'{"id":1}\n{"id": 2,\n[1,2]\n"text"\n{"id":3,"v":NaN}\n{"id":4}\n'
    rows = list(open_source(write(tmp_path, "rows.ndjson", data)))
    assert [r.location.line for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r.record is not None for r in rows] == [True, False, False, False, False, True]
    assert rows[1].error is not None and rows[1].error.startswith("line is not valid JSON")
    assert rows[2].error == "line is a JSON array, not an object"
    assert rows[3].error == "line is a JSON string, not an object"
    assert rows[4].error is not None and "NaN and Infinity are not JSON numbers" in rows[4].error


def test_a_line_longer_than_the_limit_is_streamed_past(tmp_path: Path) -> None:
    """An over-long line is one invalid row with its size; it is not held whole in memory."""
    huge = b'{"id":"big","pad":"' + b"x" * 5000 + b'"}'
    data = b'{"id":1}\n' + huge + b'\n{"id":2}\n' + huge
    url = write(tmp_path, "rows.ndjson", data)
    rows = list(open_source(url, block_bytes=256, max_line_bytes=1000))
    assert [r.location.line for r in rows] == [1, 2, 3, 4]
    assert (
        rows[1].error == f"line is {len(huge):,} bytes, longer than elacsym's 64 MiB document limit"
    )
    assert rows[1].text is not None and len(rows[1].text) <= 800
    assert rows[2].record == {"id": 2}
    assert rows[3].error is not None and rows[3].resume == ResumePoint(len(data), 4)


def test_resume_at_a_byte_offset_continues_with_the_next_line(tmp_path: Path) -> None:
    """Resuming from any row's resume point yields exactly the rows after it."""
    url = write(tmp_path, "rows.ndjson", ndjson(*ROWS))
    everything = list(open_source(url))
    for k in (0, 4, 9):
        rest = list(open_source(url, start=everything[k].resume))
        assert [(r.location, r.record) for r in rest] == [
            (r.location, r.record) for r in everything[k + 1 :]
        ]


def test_resume_seeks_past_the_written_part_without_reading_it(tmp_path: Path) -> None:
    """Bytes before the offset are never parsed: a garbage head does not surface as rows."""
    head = b"this is not json\n" * 1000
    url = write(tmp_path, "rows.ndjson", head + ndjson(*ROWS))
    rows = list(open_source(url, start=ResumePoint(offset=len(head), line=1000)))
    assert ids(rows) == list(range(10))
    assert rows[0].location.line == 1001
    assert all(r.error is None for r in rows)


def test_resume_inside_a_line_or_past_the_end_is_refused(tmp_path: Path) -> None:
    """A resume offset that is not a line start means the file changed: a clear error."""
    data = ndjson(*ROWS)
    url = write(tmp_path, "rows.ndjson", data)
    with pytest.raises(SourceError, match=r"byte 5: that offset is not at the start of a line"):
        list(open_source(url, start=ResumePoint(offset=5, line=0)))
    with pytest.raises(SourceError, match=r"past the end of the file.*changed"):
        list(open_source(url, start=ResumePoint(offset=len(data) + 10, line=10)))
    assert list(open_source(url, start=ResumePoint(offset=len(data), line=10))) == []


def _zstd_compress(data: bytes) -> bytes:
    import zstandard  # the zstd extra, part of the test install

    return zstandard.ZstdCompressor().compress(data)


def _lzma_alone_compress(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_ALONE)  # the legacy .lzma container


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [
        (".gz", gzip.compress),
        (".gzip", gzip.compress),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
        (".lzma", _lzma_alone_compress),
        (".zst", _zstd_compress),
        (".zstd", _zstd_compress),
    ],
)
def test_compressed_ndjson_reads_and_resumes(tmp_path: Path, suffix: str, compress: Any) -> None:
    """Compressed files stream, and resume at a decompressed offset by re-reading up to it."""
    url = write(tmp_path, "rows.ndjson" + suffix, compress(ndjson(*ROWS)))
    everything = list(open_source(url))
    assert ids(everything) == list(range(10))
    rest = list(open_source(url, start=everything[6].resume))
    assert ids(rest) == [7, 8, 9]
    assert rest[0].location.line == 8


def test_explicit_compression_overrides_the_name(tmp_path: Path) -> None:
    """compression: gzip reads a gzip file whatever its name; "none" reads it raw."""
    url = write(tmp_path, "rows.ndjson", gzip.compress(ndjson(*ROWS)))
    assert ids(list(open_source(url, compression="gzip"))) == list(range(10))
    plain = write(tmp_path, "plain.ndjson.gz", ndjson(*ROWS))
    assert ids(list(open_source(plain, compression="none"))) == list(range(10))


def test_names_apply_cannot_stream_are_refused_before_reading(tmp_path: Path) -> None:
    """.zip (or any ending outside the table) is refused at open, never read as raw NDJSON."""
    url = write(tmp_path, "rows.jsonl.zip", gzip.compress(ndjson(*ROWS)))
    with pytest.raises(SourceError, match=r"rows\.jsonl\.zip: it ends in \.zip"):
        open_source(url, format="ndjson")


def test_a_corrupt_or_truncated_compressed_file_is_a_source_error(tmp_path: Path) -> None:
    """Bad gzip bytes or a cut-off stream end the read with a SourceError, not a traceback."""
    bad = write(tmp_path, "bad.ndjson.gz", ndjson(*ROWS))
    with pytest.raises(SourceError, match=r"bad\.ndjson\.gz as gzip"):
        list(open_source(bad))
    packed = gzip.compress(b"".join(ndjson({"id": i, "pad": "x" * i}) for i in range(2000)))
    cut = write(tmp_path, "cut.ndjson.gz", packed[: len(packed) // 2])
    with pytest.raises(SourceError, match=r"cut\.ndjson\.gz.*truncated"):
        list(open_source(cut))


TRUNCATED_LINES = [
    orjson.dumps({"id": i, "vector": [i, 1], "pad": "x" * (i % 50)}) + b"\n" for i in range(20_000)
]


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [
        (".gz", gzip.compress),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
        (".lzma", _lzma_alone_compress),
        (".zst", _zstd_compress),
    ],
)
@pytest.mark.parametrize("keep", [0.5, 0.999])
@pytest.mark.parametrize("decode", [True, False])
def test_a_truncated_compressed_file_names_the_line_and_offset_it_reached(
    tmp_path: Path, suffix: str, compress: Any, keep: float, decode: bool
) -> None:
    """A cut-off gzip, bz2, xz, lzma or zstd stream is a SourceError at FILE line N, never a
    short read: the rows before it are whole, and the message says how far reading got."""
    packed = compress(b"".join(TRUNCATED_LINES))
    url = write(tmp_path, "cut.ndjson" + suffix, packed[: int(len(packed) * keep)])
    read: list[Any] = []
    with pytest.raises(SourceError) as caught:
        for row in open_source(url, decode=decode):
            read.append(row)
    message = str(caught.value)
    # Every row before the cut is whole (bz2 decodes 900 kB blocks: maybe none at all).
    assert [r.location.line for r in read] == list(range(1, len(read) + 1))
    assert all(r.text == TRUNCATED_LINES[i].rstrip() for i, r in enumerate(read))
    line, offset = len(read) + 1, sum(len(x) for x in TRUNCATED_LINES[: len(read)])
    assert f"Cannot read {url} at line {line:,} ({offset:,} bytes into the decompressed data)" in (
        message
    ), message
    assert "ends before it is complete" in message and "truncated" in message


def test_a_zstd_file_of_several_frames_reads_across_them(tmp_path: Path) -> None:
    """Concatenated zstd frames (as `zstd -c a b`) are one stream; only a cut frame is an error."""
    whole = ndjson(*ROWS)
    url = write(
        tmp_path, "frames.ndjson.zst", _zstd_compress(whole[:37]) + _zstd_compress(whole[37:])
    )
    assert ids(list(open_source(url))) == list(range(10))


def test_zstd_without_its_module_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading .zst without the zstandard package says what to install."""
    monkeypatch.delitem(fsspec.compression.compr, "zstd")  # as without the [zstd] extra
    url = write(tmp_path, "rows.ndjson.zst", b"\x28\xb5\x2f\xfd")
    with pytest.raises(SourceError, match=r"pip install 'elax-plan\[zstd\]'"):
        list(open_source(url))


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    """A file that does not exist names the URL and what to check."""
    with pytest.raises(SourceError, match=r"Cannot open source file .*nope\.ndjson"):
        list(open_source((tmp_path / "nope.ndjson").as_uri()))


def test_memory_filesystem_reads_and_resumes() -> None:
    """memory:// works like any store, resume included."""
    url = f"memory://src-{uuid.uuid4().hex}/rows.jsonl"
    with fsspec.open(url, "wb") as f:
        f.write(ndjson(*ROWS))
    everything = list(open_source(url))
    assert ids(everything) == list(range(10))
    assert ids(list(open_source(url, start=everything[1].resume))) == list(range(2, 10))


@pytest.mark.s3
def test_s3_source_reads_and_resumes(s3_server: S3Server) -> None:
    """An s3:// source on a real S3-compatible server streams and resumes by offset."""
    bucket = make_bucket(s3_server)
    options = s3_server.storage_options()
    url = f"s3://{bucket}/data/rows.ndjson"
    with fsspec.open(url, "wb", **options) as f:
        f.write(ndjson(*ROWS))
    everything = list(open_source(url, storage_options=options))
    assert ids(everything) == list(range(10))
    rest = list(open_source(url, storage_options=options, start=everything[4].resume))
    assert ids(rest) == [5, 6, 7, 8, 9]
