"""The source reader: listing with globs and fingerprints on every backend, and bounded samples."""

from __future__ import annotations

import bz2
import functools
import gzip
import json
import os
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elax_plan.errors import SourceError
from elax_plan.live.model import SourceListing
from elax_plan.live.source import (
    SAMPLE_BYTES,
    SAMPLE_FILES,
    count_rows,
    list_source,
    read_source,
    sample_source,
)
from elax_plan.spec.model import AttributesSpec
from tests.conftest import S3Server, make_bucket
from tests.live.conftest import source_spec


@dataclass
class SourceDir:
    """A directory of source files on one backend, written through fsspec."""

    kind: str
    base: str  # URL of the directory, as a user would write it
    options: dict[str, Any] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def write(self, name: str, data: bytes) -> str:
        fs, path = fsspec.core.url_to_fs(self.url(name), **self.options)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, data)
        return self.url(name)

    def spec(self, *names: str, **overrides: Any) -> Any:
        return source_spec(*(self.url(n) for n in names), storage_options=self.options, **overrides)


@pytest.fixture(params=["file", "memory", "s3"])
def src(request: pytest.FixtureRequest, tmp_path: Path) -> SourceDir:
    """An empty source directory on file://, memory:// and s3:// (moto server)."""
    if request.param == "file":
        return SourceDir("file", (tmp_path / "src").as_uri())
    if request.param == "memory":
        return SourceDir("memory", f"memory://src-{uuid.uuid4().hex}")
    s3: S3Server = request.getfixturevalue("s3_server")
    return SourceDir("s3", f"s3://{make_bucket(s3)}/data", s3.storage_options())


def rows(n: int, start: int = 0, dims: int = 4) -> list[dict[str, Any]]:
    return [dict(r) for r in _rows(n, start, dims)]


@functools.cache
def _rows(n: int, start: int, dims: int) -> tuple[dict[str, Any], ...]:
    rng = random.Random(start)
    return tuple(
        {
            "id": i,
            "vector": [round(rng.uniform(-1, 1), 6) for _ in range(dims)],
            "title": f"item {i}",
            "price": i % 97,
        }
        for i in range(start, start + n)
    )


@functools.cache
def gzipped_rows(n: int, dims: int) -> bytes:
    return gzip.compress(ndjson(rows(n, dims=dims)), mtime=0)


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def document_bytes(record: dict[str, Any], vector_text: str) -> int:
    """The upserts element apply sends for ``record`` (NDJSON: the vector text as written)."""
    attributes = {k: v for k, v in record.items() if k not in ("id", "vector")}
    doc = json.dumps(
        {"id": str(record["id"]), "attributes": attributes},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return len(doc) + len(',"vector":') + len(vector_text) + 1


# --- listing ---------------------------------------------------------------------------------


def test_glob_lists_files_sorted_with_fingerprints(src: SourceDir) -> None:
    """A glob gives only matching files, sorted, in the user's URL form, with size+etag/mtime."""
    for name in ("b.ndjson", "a.ndjson", "c.txt", "sub/d.ndjson"):
        src.write(name, b'{"id":1}\n')
    listing = list_source(src.spec("*.ndjson"))
    assert [f.url for f in listing.files] == [src.url("a.ndjson"), src.url("b.ndjson")]
    for f in listing.files:
        assert f.size == 9 and f.rows is None
        kind = "etag" if src.kind == "s3" else "mtime"
        assert f.fingerprint.startswith(f"size=9;{kind}=")
    if src.kind != "s3":
        stamp = listing.files[0].fingerprint.split("mtime=")[1].split(";")[0]
        assert len(stamp) == len("2026-01-02T03:04:05.123456Z") and stamp.endswith("Z")


def test_recursive_glob_and_url_lists_are_deduplicated(src: SourceDir) -> None:
    """** reaches every depth; overlapping URLs and globs list each file once, sorted."""
    for name in ("x/1.ndjson", "x/y/2.ndjson", "top.ndjson"):
        src.write(name, b"{}\n")
    spec = src.spec("**/*.ndjson", "top.ndjson", "x/*.ndjson")
    listing = list_source(spec)
    urls = [f.url for f in listing.files]
    assert urls == sorted(urls)
    assert set(urls) == {src.url("top.ndjson"), src.url("x/1.ndjson"), src.url("x/y/2.ndjson")}


def test_single_url_is_listed_as_written(src: SourceDir) -> None:
    """A plain URL (no glob) is listed under exactly that URL."""
    url = src.write("one.ndjson", b"{}\n{}\n")
    (f,) = list_source(src.spec("one.ndjson")).files
    assert (f.url, f.size) == (url, 6)


def test_fingerprint_changes_when_content_changes(src: SourceDir) -> None:
    """Same size, new bytes: the fingerprint changes (ETag on S3, modification time elsewhere)."""
    src.write("f.ndjson", b'{"id":"aaaa"}\n')
    before = list_source(src.spec("f.ndjson")).files[0]
    src.write("f.ndjson", b'{"id":"bbbb"}\n')
    if src.kind == "file":
        # Without sleeping, a rewrite can land in the same kernel clock tick; set the time a
        # later write would have (the fingerprint is defined by size + mtime, not by content).
        path = Path(src.url("f.ndjson").removeprefix("file://"))
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000))
    after = list_source(src.spec("f.ndjson")).files[0]
    assert after.size == before.size
    assert after.fingerprint != before.fingerprint


def test_unchanged_files_keep_their_fingerprint(src: SourceDir) -> None:
    """Listing twice without a change gives identical listings (deterministic)."""
    for i in range(5):
        src.write(f"p{i}.ndjson", b"{}\n")
    assert list_source(src.spec("p*.ndjson")) == list_source(src.spec("p*.ndjson"))


def test_empty_glob_is_an_error_naming_the_pattern(src: SourceDir) -> None:
    """A pattern that matches nothing: one paragraph naming it and what to check."""
    src.write("a.ndjson", b"{}\n")
    with pytest.raises(SourceError) as raised:
        list_source(src.spec("*.parquet"))
    message = raised.value.message
    assert message.startswith(f"source.uri {src.url('*.parquet')} matched no files")
    assert "Check the pattern and that the files exist." in message


def test_one_empty_pattern_among_several_is_an_error(src: SourceDir) -> None:
    """Each URL must match something: a typo in the second of two patterns is reported."""
    src.write("a.ndjson", b"{}\n")
    with pytest.raises(SourceError) as raised:
        list_source(src.spec("*.ndjson", "typo/*.ndjson"))
    assert src.url("typo/*.ndjson") in raised.value.message


def test_missing_file_is_an_error(src: SourceDir) -> None:
    """A plain URL that does not exist is reported as such."""
    with pytest.raises(SourceError) as raised:
        list_source(src.spec("nope.ndjson"))
    assert f"source file {src.url('nope.ndjson')} does not exist" in raised.value.message


def test_directory_url_is_an_error_suggesting_a_glob(src: SourceDir) -> None:
    """A URL naming a directory asks for a glob instead."""
    src.write("dir/a.ndjson", b"{}\n")
    with pytest.raises(SourceError) as raised:
        list_source(src.spec("dir"))
    assert "is a directory" in raised.value.message
    assert f"{src.url('dir')}/*.ndjson" in raised.value.message


def test_a_listed_file_apply_cannot_read_is_refused(src: SourceDir) -> None:
    """A glob that matches x.jsonl.zip is an error naming it and the supported endings."""
    src.write("a.ndjson", b'{"id":1}\n')
    src.write("b.jsonl.zip", b"PK\x03\x04")
    with pytest.raises(SourceError) as raised:
        list_source(src.spec("*"))
    message = raised.value.message
    assert f"Cannot read {src.url('b.jsonl.zip')}: it ends in .zip" in message
    assert ".gz, .gzip, .bz2, .xz, .lzma, .zst, .zstd" in message
    assert "recompress them with gzip or zstd" in message


def test_local_glob_skips_hidden_files_like_a_shell(tmp_path: Path) -> None:
    """Locally, * does not match a leading dot (editor and partial-download files)."""
    (tmp_path / "a.ndjson").write_bytes(b"{}\n")
    (tmp_path / ".a.ndjson.swp.ndjson").write_bytes(b"{}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".b.ndjson").write_bytes(b"{}\n")
    base = tmp_path.as_uri()
    assert [f.url for f in list_source(source_spec(f"{base}/*.ndjson")).files] == [
        f"{base}/a.ndjson"
    ]
    assert [f.url for f in list_source(source_spec(f"{base}/**/*.ndjson")).files] == [
        f"{base}/a.ndjson"
    ]


def test_missing_local_directory_is_named(tmp_path: Path) -> None:
    """A glob under a directory that does not exist says which directory."""
    with pytest.raises(SourceError) as raised:
        list_source(source_spec(f"{tmp_path.as_uri()}/nope/*.ndjson"))
    assert f"directory {tmp_path}/nope does not exist" in raised.value.message


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads every directory: chmod 000 denies nothing"
)
def test_unreadable_directory_is_a_permission_error(tmp_path: Path) -> None:
    """A directory the user may not read: the message says permission denied and what to check."""
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.ndjson").write_bytes(b"{}\n")
    locked.chmod(0)
    try:
        with pytest.raises(SourceError) as raised:
            list_source(source_spec(f"{locked.as_uri()}/*.ndjson"))
    finally:
        locked.chmod(0o755)
    assert "permission denied" in raised.value.message
    assert str(locked) in raised.value.message


def test_missing_bucket_is_named(s3_server: S3Server) -> None:
    """On S3 an empty glob in a bucket that does not exist says so."""
    spec = source_spec(
        "s3://no-such-source-bucket/x/*.ndjson", storage_options=s3_server.storage_options()
    )
    with pytest.raises(SourceError) as raised:
        list_source(spec)
    assert "bucket 'no-such-source-bucket' does not exist" in raised.value.message


# --- sampling --------------------------------------------------------------------------------


def test_small_ndjson_sample_is_exact(src: SourceDir) -> None:
    """A file that fits the sample: every row counted, all its bytes, exact request bytes."""
    records = rows(50)
    data = ndjson(records)
    src.write("a.ndjson", data)
    spec = src.spec("a.ndjson")
    sample = sample_source(list_source(spec), spec)
    assert sample.sampled_rows == 50
    assert sample.sampled_bytes == len(data)
    expected = sum(document_bytes(r, json.dumps(r["vector"])) for r in records)
    assert sample.request_bytes == expected


def test_sample_reads_a_bounded_prefix_and_estimates_rows(tmp_path: Path) -> None:
    """A 4 MB file: at most SAMPLE_BYTES are sampled, and size / bytes-per-row ≈ row count."""
    records = rows(20_000, dims=16)
    data = ndjson(records)
    (tmp_path / "big.ndjson").write_bytes(data)
    spec = source_spec(f"{tmp_path.as_uri()}/big.ndjson")
    listing = list_source(spec)
    sample = sample_source(listing, spec)
    assert 0 < sample.sampled_bytes <= SAMPLE_BYTES
    assert sample.source_bytes_per_row is not None
    estimate = listing.files[0].size / sample.source_bytes_per_row
    assert abs(estimate - 20_000) / 20_000 < 0.05


def test_gzip_sample_uses_compressed_sizes(src: SourceDir) -> None:
    """Gzip NDJSON: the sample's bytes are compressed bytes, so size / per-row ≈ row count."""
    packed = gzipped_rows(30_000, dims=8)
    assert len(packed) > SAMPLE_BYTES  # only a prefix can be sampled
    src.write("big.ndjson.gz", packed)
    spec = src.spec("big.ndjson.gz")
    listing = list_source(spec)
    assert listing.files[0].size == len(packed)
    sample = sample_source(listing, spec)
    assert sample.sampled_rows > 1000
    assert 0 < sample.sampled_bytes <= SAMPLE_BYTES
    assert sample.source_bytes_per_row is not None
    estimate = len(packed) / sample.source_bytes_per_row
    assert abs(estimate - 30_000) / 30_000 < 0.1
    # Request bytes per row do not depend on compression.
    plain = rows(sample.sampled_rows, dims=8)
    expected = sum(document_bytes(r, json.dumps(r["vector"])) for r in plain)
    assert sample.request_bytes == expected


def test_bz2_rows_larger_than_the_sample_still_give_an_estimate(tmp_path: Path) -> None:
    """768-d rows in bz2: SAMPLE_BYTES holds no whole 900 kB block, so the sampler reads a larger
    (bounded) prefix of that one file instead of estimating 0 rows."""
    records = rows(1_500, dims=768)
    packed = bz2.compress(ndjson(records))
    assert len(packed) > 4 * SAMPLE_BYTES
    (tmp_path / "wide.ndjson.bz2").write_bytes(packed)
    spec = source_spec(f"{tmp_path.as_uri()}/wide.ndjson.bz2")
    listing = list_source(spec)
    sample = sample_source(listing, spec)
    assert sample.sampled_rows > 0 and sample.source_bytes_per_row is not None
    estimate = len(packed) / sample.source_bytes_per_row
    assert abs(estimate - 1_500) / 1_500 < 0.1, estimate


def test_whole_small_gzip_file_is_sampled_exactly(tmp_path: Path) -> None:
    """A small gzip file decompressed to its end: rows and compressed bytes are exact."""
    packed = gzip.compress(ndjson(rows(40)), mtime=0)
    (tmp_path / "s.ndjson.gz").write_bytes(packed)
    spec = source_spec(f"{tmp_path.as_uri()}/s.ndjson.gz")
    sample = sample_source(list_source(spec), spec)
    assert (sample.sampled_rows, sample.sampled_bytes) == (40, len(packed))


def test_zstd_files_are_sampled_through_the_zstd_extra(tmp_path: Path) -> None:
    """.zst (the zstd extra): a whole small file is sampled exactly; a large one's sample is a
    prefix whose compressed bytes scale to the file."""
    import zstandard

    small = zstandard.ZstdCompressor().compress(ndjson(rows(40)))
    (tmp_path / "s.ndjson.zst").write_bytes(small)
    spec = source_spec(f"{tmp_path.as_uri()}/s.ndjson.zst")
    sample = sample_source(list_source(spec), spec)
    assert (sample.sampled_rows, sample.sampled_bytes) == (40, len(small))
    big = zstandard.ZstdCompressor().compress(ndjson(rows(30_000, dims=8)))
    (tmp_path / "b.ndjson.zst").write_bytes(big)
    spec = source_spec(f"{tmp_path.as_uri()}/b.ndjson.zst")
    sample = sample_source(list_source(spec), spec)
    assert 0 < sample.sampled_rows < 30_000


def test_sample_spans_the_first_few_small_files(tmp_path: Path) -> None:
    """Many tiny files: the sample reads the first SAMPLE_FILES of them, not one and not all."""
    for i in range(SAMPLE_FILES + 5):
        (tmp_path / f"f{i:03d}.ndjson").write_bytes(ndjson(rows(3, start=i * 3)))
    spec = source_spec(f"{tmp_path.as_uri()}/*.ndjson")
    sample = sample_source(list_source(spec), spec)
    assert sample.sampled_rows == 3 * SAMPLE_FILES


def test_field_mapping_shapes_request_bytes(tmp_path: Path) -> None:
    """include/rename and vector_field: null are applied to the sized documents."""
    record = {"pk": 7, "emb": [0.5, 0.25], "title_v2": "hello", "noise": "x" * 100}
    (tmp_path / "m.ndjson").write_bytes(ndjson([record]))
    spec = source_spec(
        f"{tmp_path.as_uri()}/m.ndjson",
        id_field="pk",
        vector_field=None,
        attributes=AttributesSpec(include=("title",), rename={"title_v2": "title"}),
    )
    sample = sample_source(list_source(spec), spec)
    expected = len('{"id":"7","attributes":{"title":"hello"}}') + 1
    assert sample.request_bytes == expected


def test_bad_gzip_names_the_file_and_the_codec(tmp_path: Path) -> None:
    """A .gz file that is not gzip: one paragraph naming the file and source.compression."""
    (tmp_path / "bad.ndjson.gz").write_bytes(b'{"id": 1}\n' * 10)
    spec = source_spec(f"{tmp_path.as_uri()}/bad.ndjson.gz")
    with pytest.raises(SourceError) as raised:
        sample_source(list_source(spec), spec)
    message = raised.value.message
    assert f"{tmp_path.as_uri()}/bad.ndjson.gz" in message and "as gzip" in message
    assert "source.compression" in message


def test_invalid_rows_do_not_stop_a_sample(tmp_path: Path) -> None:
    """Planning does not validate: a bad line is sized as it stands and counted."""
    (tmp_path / "x.ndjson").write_bytes(b'{"id": 1, "vector": [1, 2]}\nnot json\n\n')
    spec = source_spec(f"{tmp_path.as_uri()}/x.ndjson")
    sample = sample_source(list_source(spec), spec)
    assert sample.sampled_rows == 2
    assert sample.request_bytes == len('{"id":"1","vector":[1, 2]}') + 1 + len("not json") + 1


def write_parquet(path: Path, records: list[dict[str, Any]], row_group_size: int = 1000) -> None:
    table = pa.Table.from_pylist(
        records,
        schema=pa.schema(
            [
                ("id", pa.int64()),
                ("vector", pa.list_(pa.float32())),
                ("title", pa.string()),
                ("price", pa.int64()),
            ]
        ),
    )
    pq.write_table(table, path, row_group_size=row_group_size)


def test_parquet_rows_come_from_footers(tmp_path: Path) -> None:
    """count_rows fills exact rows per Parquet file from its footer."""
    write_parquet(tmp_path / "a.parquet", rows(1234))
    write_parquet(tmp_path / "b.parquet", rows(10, start=5000))
    spec = source_spec(f"{tmp_path.as_uri()}/*.parquet", format="parquet")
    listing = count_rows(list_source(spec), spec)
    assert [f.rows for f in listing.files] == [1234, 10]


def test_parquet_sample_sizes_float32_documents(tmp_path: Path) -> None:
    """The Parquet sample sizes the first rows as float32 documents; bytes follow the footer."""
    records = rows(300)
    write_parquet(tmp_path / "a.parquet", records, row_group_size=100)
    spec = source_spec(f"{tmp_path.as_uri()}/a.parquet", format="parquet")
    listing = read_source(spec)
    (f,) = listing.files
    sample = listing.sample
    assert f.rows == 300 and sample.sampled_rows == 100
    assert sample.sampled_bytes == round(100 * f.size / 300)
    import numpy as np
    import orjson

    expected = sum(
        document_bytes(
            r,
            orjson.dumps(
                np.asarray(r["vector"], dtype=np.float32), option=orjson.OPT_SERIALIZE_NUMPY
            ).decode(),
        )
        for r in records[:100]
    )
    assert sample.request_bytes == expected


def test_parquet_on_s3(s3_server: S3Server, tmp_path: Path) -> None:
    """Parquet footers and the sample are read through fsspec from S3 too."""
    write_parquet(tmp_path / "a.parquet", rows(42))
    src = SourceDir("s3", f"s3://{make_bucket(s3_server)}/pq", s3_server.storage_options())
    src.write("a.parquet", (tmp_path / "a.parquet").read_bytes())
    spec = src.spec("*.parquet", format="parquet")
    listing = read_source(spec)
    assert [f.rows for f in listing.files] == [42]
    assert listing.sample.sampled_rows == 42


def test_not_parquet_is_named(tmp_path: Path) -> None:
    """A .parquet file that is not Parquet: the error names the file and source.format."""
    (tmp_path / "x.parquet").write_bytes(b"definitely not parquet")
    spec = source_spec(f"{tmp_path.as_uri()}/x.parquet", format="parquet")
    with pytest.raises(SourceError) as raised:
        count_rows(list_source(spec), spec)
    assert f"{tmp_path.as_uri()}/x.parquet" in raised.value.message
    assert "source.format" in raised.value.message


def test_empty_listing_samples_nothing() -> None:
    """No files, no sample (and no error: listing already reported the empty match)."""
    spec = source_spec("file:///nowhere/*.ndjson")
    assert sample_source(SourceListing(files=()), spec).sampled_rows == 0


def test_files_under_an_excluded_state_location_are_left_out(tmp_path: Path) -> None:
    """The plan's own state under a source glob is left out and named; if nothing else
    matched, that is an error saying so (not an empty source)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.ndjson").write_bytes(ndjson(rows(2)))
    runs = tmp_path / "state" / "demo" / "runs" / "20261125T190000.123Z-1a2b3c"
    runs.mkdir(parents=True)
    (runs / "events.ndjson").write_bytes(b'{"event":"lag"}\n')
    (tmp_path / "state" / "other.ndjson").write_bytes(ndjson(rows(1)))
    state = f"{(tmp_path / 'state').as_uri()}/demo/"
    spec = source_spec(f"{tmp_path.as_uri()}/**/*.ndjson")
    listing = list_source(spec, exclude=[state])
    assert [f.url for f in listing.files] == [
        (tmp_path / "src" / "a.ndjson").as_uri(),
        (tmp_path / "state" / "other.ndjson").as_uri(),
    ]
    assert listing.excluded == ((runs / "events.ndjson").as_uri(),)
    assert listing.state_root == state
    only_state = source_spec(f"{runs.as_uri()}/*.ndjson")
    with pytest.raises(SourceError, match="matched only elax-plan's own state files"):
        list_source(only_state, exclude=[state])
