"""The chunker: body bytes, size rules, oversized rows, split, lowered target, resume points."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from fsspec.core import url_to_fs

from elax_plan.apply.chunker import FRAME_BYTES, Chunk, Chunker
from elax_plan.apply.readers import Location, ResumePoint, open_source
from elax_plan.apply.rows import InvalidRow, MappedRow, RowMapper
from elax_plan.emulator import EmbeddedTransport, Emulator, EmulatorConfig
from elax_plan.emulator.layout import decode_wal_batch, wal_key

URL = "file:///data/rows.ndjson"


def row(i: int, size: int = 0, url: str = URL) -> MappedRow:
    """A mapped row whose document is ``size`` bytes or a bit more."""
    doc = orjson.dumps({"id": str(i), "attributes": {"pad": "x" * max(0, size - 40)}})
    return MappedRow(Location(url, i + 1), ResumePoint(100 * (i + 1), i + 1), str(i), doc)


def drain(chunker: Chunker, rows: list[MappedRow]) -> tuple[list[Chunk], list[InvalidRow]]:
    chunks: list[Chunk] = []
    invalid: list[InvalidRow] = []
    for r in rows:
        out = chunker.add(r)
        if isinstance(out, InvalidRow):
            invalid.append(out)
        elif out is not None:
            chunks.append(out)
    last = chunker.flush()
    if last is not None:
        chunks.append(last)
    return chunks, invalid


def upserts(chunk: Chunk) -> list[dict[str, Any]]:
    body = orjson.loads(chunk.body)
    assert list(body) == ["upserts"]
    return body["upserts"]  # type: ignore[no-any-return]


def test_body_is_exactly_the_portable_upserts_array() -> None:
    """{"upserts":[doc,doc]}: the documents joined as given, no deletes key, nothing else."""
    a, b = row(0), row(1)
    chunker = Chunker(10_000, 20_000)
    assert chunker.add(a) is None and chunker.add(b) is None
    chunk = chunker.flush()
    assert chunk is not None
    assert chunk.body == b'{"upserts":[' + a.document + b"," + b.document + b"]}"
    assert (chunk.rows, chunk.first, chunk.last, chunk.resume) == (
        2,
        a.location,
        b.location,
        b.resume,
    )
    assert chunker.flush() is None  # never an empty body


def test_chunks_stay_under_max_and_close_to_target() -> None:
    """Over random row sizes every body is ≤ max, ≤ target unless one row, and ≥ target - a row."""
    rng = random.Random(11)
    rows = [row(i, rng.randint(50, 3000)) for i in range(2000)]
    target, most = 20_000, 25_000
    chunks, invalid = drain(Chunker(target, most), rows)
    assert not invalid
    assert [d["id"] for c in chunks for d in upserts(c)] == [str(i) for i in range(2000)]
    for i, chunk in enumerate(chunks):
        assert chunk.size == len(chunk.body) <= target
        if i < len(chunks) - 1:
            following = len(chunks[i + 1].items[0].document)
            assert (
                chunk.size + 1 + following > target
            )  # it closed only because the next row did not fit
    assert sum(c.size for c in chunks) / len(chunks) > 0.85 * target


def test_a_row_over_target_goes_alone_and_a_row_over_max_is_invalid() -> None:
    """target < row ≤ max: a chunk of its own; row > max even alone: an invalid row, skipped."""
    chunker = Chunker(1_000, 5_000)
    small, big, huge, after = row(0, 100), row(1, 3_000), row(2, 6_000), row(3, 100)
    chunks, invalid = drain(chunker, [small, big, huge, after])
    assert [c.rows for c in chunks] == [1, 1, 1]
    assert chunks[1].items[0] is big and chunks[1].size <= 5_000
    (rejected,) = invalid
    assert rejected.location == huge.location and rejected.resume == huge.resume
    body_size = FRAME_BYTES + len(huge.document)
    assert rejected.reason == (
        f"row larger than max_request_bytes (5,000 bytes) even alone: "
        f"its write body would be {body_size:,} bytes"
    )
    assert len(rejected.raw_excerpt) <= 201


def test_max_request_bytes_message_matches_the_real_cap() -> None:
    """With elacsym's 2 MiB cap the reason reads like the issue's wording."""
    chunker = Chunker(1 << 20, 2_097_152)
    out = chunker.add(row(0, 2_200_000))
    assert isinstance(out, InvalidRow)
    assert out.reason.startswith("row larger than max_request_bytes (2,097,152 bytes) even alone")


def test_target_above_max_is_capped() -> None:
    """The target never exceeds max_bytes."""
    assert Chunker(10_000, 4_000).target_bytes == 4_000


def test_split_halves_keep_rows_and_resume_points() -> None:
    """split() halves by bytes; the first half resumes after its last row, the second as before."""
    chunker = Chunker(100_000, 100_000)
    rows = [row(i, 500) for i in range(9)]
    for r in rows:
        assert chunker.add(r) is None
    chunker.skip(InvalidRow(Location(URL, 10), ResumePoint(1000, 10), "bad", ""))
    chunk = chunker.flush()
    assert chunk is not None and chunk.resume == ResumePoint(1000, 10)
    first, second = chunker.split(chunk)
    assert first.rows + second.rows == 9 and abs(first.rows - second.rows) <= 1
    assert upserts(first) + upserts(second) == upserts(chunk)
    assert first.resume == first.items[-1].resume == rows[first.rows - 1].resume
    assert second.resume == chunk.resume
    assert (second.first, second.last) == (rows[first.rows].location, rows[-1].location)
    assert first.size < chunk.size and second.size < chunk.size
    pair = Chunker(100_000, 100_000)
    pair.add(rows[0])
    pair.add(rows[1])
    two = pair.flush()
    assert two is not None
    one, other = chunker.split(two)
    assert (one.rows, other.rows) == (1, 1) and one.resume == rows[0].resume
    with pytest.raises(ValueError, match="one row cannot be split"):
        chunker.split(one)


def test_lowered_target_applies_to_the_rest() -> None:
    """After lower_target, bodies stay under the new target; the target never goes back up."""
    chunker = Chunker(10_000, 10_000)
    rows = [row(i, 400) for i in range(200)]
    chunks, _ = drain(chunker, rows[:50])
    assert max(c.size for c in chunks) > 8_000
    chunker.lower_target(3_000)
    chunker.lower_target(9_000)
    assert chunker.target_bytes == 3_000
    later, _ = drain(chunker, rows[50:])
    assert all(c.size <= 3_000 for c in later)
    assert [d["id"] for c in chunks + later for d in upserts(c)] == [str(i) for i in range(200)]


def test_rejected_rows_move_the_resume_point_of_the_chunk_before() -> None:
    """Rows skipped after a chunk's last row are covered by that chunk's resume point."""
    chunker = Chunker(2_000, 2_000)
    a, b = row(0, 900), row(1, 900)
    chunker.add(a)
    chunker.add(b)
    skipped = InvalidRow(Location(URL, 3), ResumePoint(300, 3), "bad", "")
    chunker.skip(skipped)
    closed = chunker.add(row(3, 900))
    assert isinstance(closed, Chunk) and closed.rows == 2
    assert closed.resume == skipped.resume
    assert chunker.consumed == row(3).resume
    chunker.flush()
    trailing = InvalidRow(Location(URL, 5), ResumePoint(500, 5), "bad", "")
    chunker.skip(trailing)
    assert chunker.flush() is None and chunker.consumed == trailing.resume


def test_a_chunk_never_spans_two_files() -> None:
    """Rows of another file while a chunk is open are a programming error."""
    chunker = Chunker(10_000, 10_000)
    chunker.add(row(0))
    with pytest.raises(ValueError, match="cannot span files"):
        chunker.add(row(1, url="file:///data/other.ndjson"))
    chunker.flush()
    assert chunker.add(row(1, url="file:///data/other.ndjson")) is None


def test_end_to_end_bodies_parse_back_and_the_server_stores_them(tmp_path: Path) -> None:
    """NDJSON → rows → bodies: the embedded emulator accepts them and its WAL holds the rows."""
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 16))
    vectors[::7] *= 1e-6  # exponents in the text
    records = [
        {"id": i, "vector": vectors[i].tolist(), "title": f"t{i}", "n": {"k": [i]}}
        for i in range(300)
    ]
    path = tmp_path / "rows.ndjson"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    mapper = RowMapper(vector_dims=16)
    chunker = Chunker(20_000, 40_000)
    chunks: list[Chunk] = []
    for raw in open_source(path.as_uri()):
        mapped = mapper.map(raw)
        assert isinstance(mapped, MappedRow)
        out = chunker.add(mapped)
        assert not isinstance(out, InvalidRow)
        if out is not None:
            chunks.append(out)
    last = chunker.flush()
    assert last is not None
    chunks.append(last)
    assert len(chunks) > 3
    docs = [d for c in chunks for d in upserts(c)]
    assert [d["id"] for d in docs] == [str(i) for i in range(300)]
    assert [d["attributes"] for d in docs] == [
        {"title": f"t{i}", "n": {"k": [i]}} for i in range(300)
    ]
    assert chunks[-1].resume.offset == path.stat().st_size

    store = (tmp_path / "store").as_uri()
    with Emulator(EmulatorConfig(store, max_body_bytes=40_000)) as emulator:
        client = httpx.Client(transport=EmbeddedTransport(emulator), base_url="http://embedded")
        with client:
            for seq, chunk in enumerate(chunks, start=1):
                answer = client.post(
                    "/v2/namespaces/docs",
                    content=chunk.body,
                    headers={"Content-Type": "application/json"},
                )
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"wal_sequence": seq}
    fs, root = url_to_fs(store)
    stored = []
    for seq in range(1, len(chunks) + 1):
        batch = decode_wal_batch(fs.cat_file(f"{root}/{wal_key('docs', seq)}"))
        stored += [op.document for op in batch.operations]  # type: ignore[union-attr]
    assert [d.id for d in stored] == [str(i) for i in range(300)]
    for doc, vector in zip(stored, vectors, strict=True):
        assert doc.vector is not None
        assert np.array_equal(doc.vector, vector.astype(np.float32))
