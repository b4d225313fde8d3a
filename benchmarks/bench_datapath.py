"""Measure the streaming data path: source file → validated rows → finished write bodies.

Generates N rows (fixed seed) of 768-d float vectors with a few text attributes into a
temporary NDJSON and Parquet file, then measures, pinned to one CPU:

(a) ``orjson.loads`` on each line alone (lines already in memory: the strictest baseline);
(b) NDJSON → bodies: ``open_source`` → ``RowMapper.map`` → ``Chunker.add``;
(c) Parquet (float32 fixed-size-list vectors) → bodies;
(d) time from ``open_source`` to the first row when resuming at 90 % of a large NDJSON file.

Prints one JSON line. Issue #7's targets: (b)/(a) ≥ 0.7, (c) ≥ 60,000 rows/s.

    .venv/bin/python -m benchmarks.bench_datapath [--rows 20000] [--digits f32|f64]
        [--resume-mb 1024] [--encoding source|float32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from elax_plan.apply.chunker import Chunker
from elax_plan.apply.rows import InvalidRow, RowMapper
from elax_plan.apply.sources import ResumePoint, open_source

DIMS = 768
WORDS = ["ultralight", "down", "jacket", "trail", "shoe", "wool", "sock", "tent", "stove", "lamp"]


def documents(rows: int, seed: int, f64_digits: bool) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    for start in range(0, rows, 1024):
        block = rng.standard_normal((min(1024, rows - start), DIMS)).astype(np.float32)
        for k, vector in enumerate(block):
            i = start + k
            yield {
                "id": i,
                # f64 digits: what json.dumps(vector.tolist()) writes (17 significant digits);
                # f32: what orjson writes for a float32 array (shortest float32 digits).
                "vector": vector.tolist() if f64_digits else vector,
                "title": f"{WORDS[i % 10]} {WORDS[(i // 10) % 10]} {i}",
                "category": f"c{i % 17}",
                "description": " ".join(WORDS[(i + j) % 10] for j in range(12)),
            }


def write_ndjson(path: Path, rows: int, seed: int, f64_digits: bool) -> list[int]:
    """Write the file; return the byte offset at which each line starts."""
    offsets = []
    position = 0
    with path.open("wb") as out:
        for doc in documents(rows, seed, f64_digits):
            line = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)
            offsets.append(position)
            position += len(line)
            out.write(line)
    return offsets


def write_parquet(path: Path, rows: int, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((rows, DIMS)).astype(np.float32)
    ids = np.arange(rows)
    table = pa.table(
        {
            "id": pa.array(ids),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIMS),
            "title": [f"{WORDS[i % 10]} {WORDS[(i // 10) % 10]} {i}" for i in ids],
            "category": [f"c{i % 17}" for i in ids],
            "description": [" ".join(WORDS[(i + j) % 10] for j in range(12)) for i in ids],
        }
    )
    pq.write_table(table, path, row_group_size=8192)


def bodies(url: str, mapper: RowMapper) -> tuple[int, int, int]:
    """Run the data path; return (rows, bodies, body bytes)."""
    chunker = Chunker(1 << 20, 2 << 20)
    rows = count = size = 0
    for raw in open_source(url, columns=mapper.columns):
        mapped = mapper.map(raw)
        if isinstance(mapped, InvalidRow):
            raise SystemExit(f"benchmark row invalid: {mapped.location}: {mapped.reason}")
        out = chunker.add(mapped)
        rows += 1
        if isinstance(out, InvalidRow):
            raise SystemExit(f"benchmark row too large: {out.reason}")
        if out is not None:
            count += 1
            size += out.size
    last = chunker.flush()
    if last is not None:
        count += 1
        size += last.size
    return rows, count, size


def best_of(repeats: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def loads_in_memory(path: Path, repeats: int) -> float:
    """(a) orjson.loads on each line, the lines already split in memory: seconds."""
    lines = path.read_bytes().splitlines()
    loads = orjson.loads

    def parse() -> None:
        for line in lines:
            loads(line)  # each result dropped at once, as the data path does

    return best_of(repeats, parse)


def loads_from_file(path: Path, repeats: int) -> float:
    """(a') the plain script: ``for line in open(path, "rb"): orjson.loads(line)``: seconds."""
    loads = orjson.loads

    def parse() -> None:
        with path.open("rb") as f:
            for line in f:
                loads(line)

    return best_of(repeats, parse)


def format_only(path: Path, repeats: int) -> float:
    """(c0) the ceiling of (c): orjson formatting each float32 vector alone, nothing else."""
    import pyarrow.parquet as pq

    column = pq.read_table(path, columns=["vector"]).column("vector").combine_chunks()
    matrix = column.values.to_numpy().reshape(len(column), -1)
    dumps, option = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY

    def run() -> None:
        for vector in matrix:
            dumps(vector, option=option)

    return best_of(repeats, run)


def resume_time(tmp: Path, megabytes: int, seed: int, f64_digits: bool) -> tuple[int, float]:
    """(d) file size and seconds from open_source(start=90 %) to its first row."""
    large = tmp / "large.ndjson"
    sample = next(documents(1, seed, f64_digits))
    line_bytes = len(orjson.dumps(sample, option=orjson.OPT_SERIALIZE_NUMPY)) + 1
    offsets = write_ndjson(large, max(1, (megabytes << 20) // line_bytes), seed, f64_digits)
    at = int(len(offsets) * 0.9)
    point = ResumePoint(offset=offsets[at], line=at)
    started = time.perf_counter()
    first = next(open_source(large.as_uri(), start=point))
    elapsed = time.perf_counter() - started
    assert first.location.line == at + 1, first.location
    return large.stat().st_size, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--digits", choices=["f32", "f64"], default="f32")
    parser.add_argument("--encoding", choices=["source", "float32"], default="source")
    parser.add_argument("--resume-mb", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, honestly
    f64_digits = args.digits == "f64"
    mapper = RowMapper(vector_dims=DIMS, vector_encoding=args.encoding)
    results: dict[str, tuple[int, int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="elax-bench-") as tmp:
        ndjson = Path(tmp) / "rows.ndjson"
        parquet = Path(tmp) / "rows.parquet"
        write_ndjson(ndjson, args.rows, args.seed, f64_digits)
        write_parquet(parquet, args.rows, args.seed)
        t_loads = loads_in_memory(ndjson, args.repeats)
        t_loads_file = loads_from_file(ndjson, args.repeats)
        t_ndjson = best_of(
            args.repeats, lambda: results.update(ndjson=bodies(ndjson.as_uri(), mapper))
        )
        t_format = format_only(parquet, args.repeats)
        t_parquet = best_of(
            args.repeats, lambda: results.update(parquet=bodies(parquet.as_uri(), mapper))
        )
        ndjson.unlink()
        parquet.unlink()
        resume_bytes, t_resume = resume_time(Path(tmp), args.resume_mb, args.seed, f64_digits)

    rows_ndjson, bodies_ndjson, bytes_ndjson = results["ndjson"]
    rows_parquet, bodies_parquet, bytes_parquet = results["parquet"]
    ndjson_rate = rows_ndjson / t_ndjson
    parquet_rate = rows_parquet / t_parquet
    print(
        json.dumps(
            {
                "rows": args.rows,
                "dims": DIMS,
                "digits": args.digits,
                "vector_encoding": args.encoding,
                "a_orjson_loads_rows_per_s": round(args.rows / t_loads),
                "a_file_loop_loads_rows_per_s": round(args.rows / t_loads_file),
                "b_ndjson_bodies_rows_per_s": round(ndjson_rate),
                "b_over_a": round(ndjson_rate * t_loads / args.rows, 3),
                "b_over_a_file_loop": round(ndjson_rate * t_loads_file / args.rows, 3),
                "ndjson_bodies": bodies_ndjson,
                "ndjson_body_bytes_per_row": round(bytes_ndjson / rows_ndjson),
                "c0_orjson_format_only_rows_per_s": round(args.rows / t_format),
                "c_parquet_bodies_rows_per_s": round(parquet_rate),
                "parquet_bodies": bodies_parquet,
                "parquet_body_bytes_per_row": round(bytes_parquet / rows_parquet),
                "d_resume_file_bytes": resume_bytes,
                "d_resume_at_90pct_first_row_s": round(t_resume, 4),
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
