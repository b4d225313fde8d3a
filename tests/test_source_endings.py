"""Every source ending validate accepts is sampled by plan and read by apply the same way.

One real file per ending in ``source_format``'s table, and three views of it that must agree
with the rows written: the plan file loads (validate + build), the planner's listing and
sample (``live.source.read_source``) count them, and apply's reader (``open_source``) yields
them. Endings outside the table are refused by ``validate`` and ``plan`` alike, and one
``.jsonl.gzip`` file goes through ``elax-plan apply`` end to end.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from elax_plan.apply.readers import ParquetRecord, RawRow, open_source
from elax_plan.live.source import SAMPLE_BYTES, read_source
from elax_plan.source_format import (
    CODEC_SUFFIXES,
    FORMAT_SUFFIXES,
    SUPPORTED_ENDINGS,
    Codec,
    ResolvedFormat,
    resolve,
)
from elax_plan.spec import PlanSpec, parse_plan
from tests.apply.support import assert_exact, make_dataset, run_cli, write_plan
from tests.spec.helpers import MINIMAL_PLAN

COMPRESS: dict[Codec, Callable[[bytes], bytes]] = {
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "bz2": bz2.compress,
    "xz": lambda data: lzma.compress(data, preset=1),
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE, preset=1),
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def _endings() -> list[str]:
    endings = []
    for name, fmt in FORMAT_SUFFIXES.items():
        endings.append(name)
        if fmt == "ndjson":
            endings += [name + codec for codec in CODEC_SUFFIXES]
    return endings


ENDINGS = _endings()


def test_the_walk_covers_every_ending_of_the_table() -> None:
    """3 NDJSON endings x (plain + 7 codec endings) + 3 Parquet endings: nothing is skipped."""
    assert len(ENDINGS) == 3 * (1 + len(CODEC_SUFFIXES)) + 3
    assert set(COMPRESS) == set(CODEC_SUFFIXES.values())


def records(n: int, dims: int = 8) -> list[dict[str, Any]]:
    rng = random.Random(n)  # random digits: compressed, a large file stays larger than a sample
    return [
        {"id": i, "vector": [round(rng.uniform(-1, 1), 6) for _ in range(dims)], "title": f"t {i}"}
        for i in range(n)
    ]


def write_source(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` in the format and codec ``path``'s name resolves to."""
    resolved = resolve(path.name)
    if resolved.format == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
        return
    data = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rows)
    path.write_bytes(data if resolved.codec is None else COMPRESS[resolved.codec](data))


def load(tmp_path: Path, uri: str) -> PlanSpec:
    """The minimal plan reading ``uri``, through validate and build."""
    return parse_plan(MINIMAL_PLAN.replace("data/*.ndjson", uri), base_dir=tmp_path)


def apply_ids(spec: PlanSpec, url: str) -> list[Any]:
    """The ids apply's reader yields for ``url``, with the plan's format and compression."""
    rows: list[RawRow] = list(open_source(url, spec.source.format, spec.source.compression))
    assert all(r.error is None for r in rows)
    return [
        r.record.get("id") if isinstance(r.record, ParquetRecord) else r.record["id"]  # type: ignore[index]
        for r in rows
    ]


@pytest.mark.parametrize("ending", ENDINGS)
def test_plan_and_apply_read_the_same_rows(ending: str, tmp_path: Path) -> None:
    """A small file of each ending: plan samples every row and byte, apply reads every row."""
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / f"rows{ending}"
    written = records(37)
    write_source(path, written)
    spec = load(tmp_path, f"data/*{ending}")
    expected = resolve(path.name)
    assert spec.source.format == expected.format
    listing = read_source(spec.source)
    (listed,) = listing.files
    assert listed.url == path.as_uri()
    assert (listing.sample.sampled_rows, listing.sample.sampled_bytes) == (37, path.stat().st_size)
    if expected.format == "parquet":
        assert listed.rows == 37
    assert apply_ids(spec, listed.url) == [r["id"] for r in written]


def repetitive(n: int) -> list[dict[str, Any]]:
    """Rows that compress 50-100x: the sample's 256 KiB prefix decodes to megabytes."""
    vector = [0.25, 0.5, 0.125, 1.0, 0.0, 0.0, 0.0, 0.5]
    return [{"id": f"doc-{i:08d}", "vector": vector, "category": "outdoor"} for i in range(n)]


@pytest.mark.parametrize("codec_suffix", list(CODEC_SUFFIXES))
@pytest.mark.parametrize(("dataset", "rows"), [(records, 20_000), (repetitive, 200_000)])
def test_a_sampled_prefix_estimates_what_apply_reads(
    codec_suffix: str, dataset: Callable[[int], list[dict[str, Any]]], rows: int, tmp_path: Path
) -> None:
    """A file larger than the sample: plan's row estimate from its prefix is within 10 % of the
    rows apply reads, for every codec, on random digits and on very compressible rows (the
    ratio of decompressed to compressed bytes is measured on the sampled prefix)."""
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / f"rows.jsonl{codec_suffix}"
    written = dataset(rows)
    write_source(path, written)
    if dataset is records:
        assert path.stat().st_size > SAMPLE_BYTES  # only a prefix is sampled
    spec = load(tmp_path, f"data/*.jsonl{codec_suffix}")
    listing = read_source(spec.source)
    per_row = listing.sample.source_bytes_per_row
    assert per_row is not None and 0 < listing.sample.sampled_rows < rows
    estimate = listing.files[0].size / per_row
    read = apply_ids(spec, listing.files[0].url)
    assert len(read) == rows
    assert abs(estimate - len(read)) / len(read) < 0.1, estimate


# --- refused endings ---------------------------------------------------------------------------


REFUSED = [
    ("rows.jsonl.zip", "ends in .zip (zip)"),
    ("rows.jsonl.snappy", "ends in .snappy (snappy)"),
    ("rows.jsonl.sz", "ends in .sz (snappy)"),
    ("rows.jsonl.lz4", "ends in .lz4 (lz4)"),
    ("rows.csv", "ends in .csv, which names no format"),
    ("data.jsonl.gzip.bak", "ends in .bak, which names no format"),
]


def _plan_for(tmp_path: Path, uri: str, source_extra: str = "") -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(MINIMAL_PLAN.replace("  uri: data/*.ndjson\n", f"  uri: {uri}\n{source_extra}"))
    return plan


@pytest.mark.parametrize(("name", "fragment"), REFUSED)
def test_validate_and_plan_refuse_an_ending_apply_cannot_read(
    name: str, fragment: str, tmp_path: Path
) -> None:
    """`validate` and `plan` exit 1 at the plan's line:col, listing the supported endings."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / name).write_bytes(gzip.compress(b'{"id": 1}\n'))
    plan = _plan_for(tmp_path, f"data/{name}")
    for command in ("validate", "plan"):
        done = run_cli(command, str(plan), cwd=tmp_path)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert f'plan.yaml:9:8: source.uri ("data/{name}") {fragment}' in done.stderr
        assert SUPPORTED_ENDINGS in done.stderr


def test_plan_refuses_a_listed_file_apply_cannot_read(tmp_path: Path) -> None:
    """source.format set and a glob that matches x.jsonl.zip: plan names the file, exit 1."""
    make_dataset(tmp_path / "data", files=1, rows=3)
    (tmp_path / "data" / "more.jsonl.zip").write_bytes(b"PK\x03\x04")
    plan = _plan_for(tmp_path, "data/*", "  format: ndjson\n")
    assert run_cli("validate", str(plan), cwd=tmp_path).returncode == 0
    done = run_cli("plan", str(plan), cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
    zipped = (tmp_path / "data" / "more.jsonl.zip").as_uri()
    assert f"Cannot read {zipped}: it ends in .zip (zip)" in done.stderr
    assert "recompress them with gzip or zstd" in done.stderr


# --- end to end --------------------------------------------------------------------------------


def test_apply_writes_every_row_of_a_jsonl_gzip_file(tmp_path: Path) -> None:
    """The issue's case: data.jsonl.gzip with on_invalid_row: skip writes all rows, none skipped."""
    data = make_dataset(tmp_path / "plain", files=1, rows=300)
    (tmp_path / "src").mkdir()
    source = tmp_path / "src" / "data.jsonl.gzip"
    source.write_bytes(gzip.compress(data.files[0].read_bytes()))
    plan = write_plan(
        tmp_path / "plan.yaml",
        url="embedded",
        store=(tmp_path / "store").as_uri(),
        source=str(source),
        state=(tmp_path / "state").as_uri(),
        extra="ingest:\n  on_invalid_row: skip\n  max_invalid_rows: 1000\n",
    )
    planned = run_cli("plan", str(plan), "--format", "json")
    assert planned.returncode == 0, planned.stderr
    assert orjson.loads(planned.stdout)["totals"]["rows"] == 300
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert "300 rows written" in done.stdout
    assert_exact(tmp_path / "store", "docs", data)


def test_resolved_format_is_what_the_readers_were_given() -> None:
    """The readers' open_source resolves with the same function: a .jsonl.gzip is gzip NDJSON."""
    assert resolve("s3://b/data.jsonl.gzip", "ndjson", "infer") == ResolvedFormat("ndjson", "gzip")
