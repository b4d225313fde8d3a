"""Source fingerprints: the strongest identity each store offers, and how old ones compare."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import fsspec
import pytest

from elax_plan.live.model import fingerprint_fields, same_source
from elax_plan.live.source import EDGE_BLOCK_BYTES, list_source
from tests.conftest import S3Server, make_bucket
from tests.live.conftest import source_spec


def rewrite_keeping_size_and_mtime(path: Path, at: int) -> None:
    """Change one byte at ``at`` and put the modification time back, as `cp -p` or a restore
    from backup does: size and mtime say nothing changed."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[at] = ord("7") if data[at] != ord("7") else ord("8")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def listed(url: str, **spec: str) -> str:
    (f,) = list_source(source_spec(url, **spec)).files
    return f.fingerprint


def test_a_local_rewrite_that_keeps_size_and_mtime_changes_the_fingerprint(
    tmp_path: Path,
) -> None:
    """Local files hash their first and last 64 KiB: a same-size rewrite with its mtime
    restored is a change, at either end of a large file."""
    small = tmp_path / "small.ndjson"
    small.write_bytes(b'{"id":"1","vector":[0.5]}\n' * 100)
    before = listed(small.as_uri())
    rewrite_keeping_size_and_mtime(small, 10)
    assert listed(small.as_uri()) != before
    big = tmp_path / "big.ndjson"
    big.write_bytes(b'{"id":"1","vector":[0.5]}\n' * 20_000)
    for at in (5, big.stat().st_size - 5):
        before = listed(big.as_uri())
        rewrite_keeping_size_and_mtime(big, at)
        assert listed(big.as_uri()) != before, at


def test_auto_reads_two_blocks_per_file_and_content_reads_every_byte(tmp_path: Path) -> None:
    """In auto mode a change in the middle of a large file that keeps size and mtime is not
    seen (listing reads two 64 KiB blocks, whatever the size: planning cost grows with files,
    not bytes); source.fingerprint: content hashes the whole file and sees it."""
    big = tmp_path / "big.ndjson"
    big.write_bytes(b'{"id":"1","vector":[0.5]}\n' * 400_000)  # 10 MB
    auto, content = listed(big.as_uri()), listed(big.as_uri(), fingerprint="content")
    assert fingerprint_fields(content)["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    rewrite_keeping_size_and_mtime(big, big.stat().st_size // 2)
    assert listed(big.as_uri()) == auto
    assert listed(big.as_uri(), fingerprint="content") != content
    io = Path("/proc/self/io")
    if io.exists():

        def read_bytes() -> int:
            fields = dict(line.split(": ") for line in io.read_text().splitlines())
            return int(fields["rchar"])

        start = read_bytes()
        listed(big.as_uri())
        assert read_bytes() - start < 4 * EDGE_BLOCK_BYTES
        start = read_bytes()
        listed(big.as_uri(), fingerprint="content")
        assert read_bytes() - start >= big.stat().st_size


def test_content_mode_hashes_files_on_memory_and_s3(s3_server: S3Server) -> None:
    """source.fingerprint: content streams remote files too (memory://, s3://)."""
    data = b'{"id":"1"}\n' * 1000
    url = f"memory://fp-{uuid.uuid4().hex}/a.ndjson"
    with fsspec.open(url, "wb") as f:
        f.write(data)
    sha = hashlib.sha256(data).hexdigest()
    assert fingerprint_fields(listed(url, fingerprint="content"))["sha256"] == sha
    bucket = make_bucket(s3_server)
    options = s3_server.storage_options()
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **options)
    fs.pipe(f"{bucket}/d/a.ndjson", data)
    spec = source_spec(f"s3://{bucket}/d/*.ndjson", storage_options=options, fingerprint="content")
    (f,) = list_source(spec).files
    fields = fingerprint_fields(f.fingerprint)
    assert fields["sha256"] == sha and fields["etag"] == hashlib.md5(data).hexdigest()


@pytest.mark.s3
def test_s3_fingerprints_carry_the_etag_and_the_version_id(s3_server: S3Server) -> None:
    """S3: the ETag, and on a versioned bucket the version id of an object named by its URL;
    re-uploading the very same bytes makes a new version, so a new fingerprint."""
    import boto3

    bucket = f"v-{uuid.uuid4().hex[:20]}"
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = client.put_object(Bucket=bucket, Key="d/a.ndjson", Body=b'{"id":"1"}\n')
    options = s3_server.storage_options()
    spec = source_spec(f"s3://{bucket}/d/a.ndjson", storage_options=options)
    (first,) = list_source(spec).files
    assert first.fingerprint == (
        f"size=11;etag={put['ETag'].strip(chr(34))};version={put['VersionId']}"
    )
    client.put_object(Bucket=bucket, Key="d/a.ndjson", Body=b'{"id":"1"}\n')
    (second,) = list_source(spec).files
    assert second.fingerprint != first.fingerprint
    assert not same_source(first.fingerprint, second.fingerprint)


@pytest.mark.parametrize(
    ("recorded", "listed_now", "same"),
    [
        # The format written before blocks/version existed: accepted when size+mtime agree.
        ("size=9;mtime=A", "size=9;mtime=A;blocks=b1", True),
        ("size=9;mtime=A", "size=9;mtime=B;blocks=b1", False),
        ("size=9;mtime=A", "size=8;mtime=A;blocks=b1", False),
        ("size=9;etag=E", "size=9;etag=E;version=v1", True),
        ("size=9;etag=E", "size=9;etag=F;version=v1", False),
        # The current format: every field decides.
        ("size=9;mtime=A;blocks=b1", "size=9;mtime=A;blocks=b1", True),
        ("size=9;mtime=A;blocks=b1", "size=9;mtime=A;blocks=b2", False),
        ("size=9;etag=E;version=v1", "size=9;etag=E;version=v2", False),
        # Content mode: the whole-file hash decides, and nothing else stands in for it.
        ("size=9;mtime=A;blocks=b1;sha256=h", "size=9;mtime=B;blocks=b2;sha256=h", True),
        ("size=9;mtime=A;blocks=b1;sha256=h", "size=9;mtime=A;blocks=b1;sha256=g", False),
        ("size=9;mtime=A;blocks=b1", "size=9;mtime=A;blocks=b1;sha256=h", False),
        # Back to auto from content: the auto fields decide.
        ("size=9;mtime=A;blocks=b1;sha256=h", "size=9;mtime=A;blocks=b1", True),
        # Only a field an upgrade adds, with nothing older to vouch for it: not the same.
        ("size=9;blocks=b1", "size=9;mtime=A;blocks=b1", False),
        ("size=9;mtime=unknown", "size=9;mtime=unknown", True),
    ],
)
def test_same_source(recorded: str, listed_now: str, same: bool) -> None:
    """How a recorded fingerprint compares with the listed one (and the upgrade rule)."""
    assert same_source(recorded, listed_now) is same
