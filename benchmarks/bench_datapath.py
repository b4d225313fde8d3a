"""Measure the streaming data path: source file → validated rows → finished write bodies.

Generates N rows (fixed seed) of 768-d float vectors with a few text attributes into a
temporary NDJSON and Parquet file, then measures, pinned to one CPU:

(a) ``orjson.loads`` on each line alone (lines already in memory: the strictest baseline);
(b) NDJSON → bodies: ``open_source(decode=False)`` (as apply reads) → ``RowMapper.map`` →
    ``Chunker.add``, and each closed chunk's ids counted by ``IdTracker`` (duplicates), as the
    pipeline does;
(c) Parquet (float32 fixed-size-list vectors) → bodies, the same way;
(d) time from ``open_source`` to the first row when resuming at 90 % of a large NDJSON file.

Each figure is the median of ``--repeats`` interleaved runs (CPU seconds of the pinned process;
wall seconds are printed too). Prints one JSON line. Issue #7's targets: (b)/(a) ≥ 0.7,
(c) ≥ 60,000 rows/s.

    .venv/bin/python -m benchmarks.bench_datapath [--rows 20000] [--digits f32|f64]
        [--resume-mb 1024] [--encoding source|float32]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.common import interleaved, machine, pin_to_one_core, unpin
from elax_plan.apply.chunker import Chunker
from elax_plan.apply.duplicates import IdTracker
from elax_plan.apply.readers import ResumePoint, open_source
from elax_plan.apply.rows import InvalidRow, RowMapper

DIMS = 768
WORDS = ["ultralight", "down", "jacket", "trail", "shoe", "wool", "sock", "tent", "stove", "lamp"]


def documents(
    rows: int, seed: int, f64_digits: bool, first_id: int = 0
) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    for start in range(0, rows, 1024):
        block = rng.standard_normal((min(1024, rows - start), DIMS)).astype(np.float32)
        for k, vector in enumerate(block):
            i = first_id + start + k
            yield {
                "id": i,
                # f64 digits: what json.dumps(vector.tolist()) writes (17 significant digits);
                # f32: what orjson writes for a float32 array (shortest float32 digits).
                "vector": vector.tolist() if f64_digits else vector,
                "title": f"{WORDS[i % 10]} {WORDS[(i // 10) % 10]} {i}",
                "category": f"c{i % 17}",
                "description": " ".join(WORDS[(i + j) % 10] for j in range(12)),
            }


def write_ndjson(
    path: Path, rows: int, seed: int, f64_digits: bool, first_id: int = 0
) -> list[int]:
    """Write the file; return the byte offset at which each line starts."""
    offsets = []
    position = 0
    with path.open("wb") as out:
        for doc in documents(rows, seed, f64_digits, first_id):
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
    ids = IdTracker()
    rows = count = size = 0
    for raw in open_source(url, columns=mapper.columns, decode=False):
        mapped = mapper.map(raw)
        if isinstance(mapped, InvalidRow):
            raise SystemExit(f"benchmark row invalid: {mapped.location}: {mapped.reason}")
        out = chunker.add(mapped)
        rows += 1
        if isinstance(out, InvalidRow):
            raise SystemExit(f"benchmark row too large: {out.reason}")
        if out is not None:
            ids.add(out.items)
            count += 1
            size += out.size
    last = chunker.flush()
    if last is not None:
        ids.add(last.items)
        count += 1
        size += last.size
    if ids.unique_ids != rows:
        raise SystemExit(f"benchmark ids: {ids.unique_ids} unique of {rows} rows")
    return rows, count, size


def in_memory_lines(path: Path) -> Callable[[], None]:
    """(a) orjson.loads on each line, the lines already split in memory (the strictest baseline)."""
    lines = path.read_bytes().splitlines()
    loads = orjson.loads

    def parse() -> None:
        for line in lines:
            loads(line)  # each result dropped at once, as the data path does

    return parse


def file_loop(path: Path) -> Callable[[], None]:
    """(a') the plain script: ``for line in open(path, "rb"): orjson.loads(line)``."""
    loads = orjson.loads

    def parse() -> None:
        with path.open("rb") as f:
            for line in f:
                loads(line)

    return parse


def format_only(path: Path) -> Callable[[], None]:
    """(c0) the ceiling of (c): orjson formatting each float32 vector alone, nothing else."""
    import pyarrow.parquet as pq

    column = pq.read_table(path, columns=["vector"]).column("vector").combine_chunks()
    matrix = column.values.to_numpy().reshape(len(column), -1)
    dumps, option = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY

    def run() -> None:
        for vector in matrix:
            dumps(vector, option=option)

    return run


def measure(
    rows: int,
    *,
    seed: int = 7,
    repeats: int = 5,
    digits: str = "f32",
    encoding: str = "source",
) -> dict[str, Any]:
    """Measure (a), (a'), (b), (c0) and (c) on ``rows`` generated rows, pinned to one core.

    Each measurement runs ``repeats`` times, interleaved with the others; rates are computed
    from the median CPU seconds (the process is single-threaded and pinned), and the median
    wall seconds are reported next to them.
    """
    f64_digits = digits == "f64"
    mapper = RowMapper(vector_dims=DIMS, vector_encoding=encoding)  # type: ignore[arg-type]
    results: dict[str, tuple[int, int, int]] = {}
    before = pin_to_one_core()
    try:
        with tempfile.TemporaryDirectory(prefix="elax-bench-") as tmp:
            ndjson = Path(tmp) / "rows.ndjson"
            parquet = Path(tmp) / "rows.parquet"
            write_ndjson(ndjson, rows, seed, f64_digits)
            write_parquet(parquet, rows, seed)
            ndjson_bytes, parquet_bytes = ndjson.stat().st_size, parquet.stat().st_size
            timings = interleaved(
                repeats,
                {
                    "a_orjson_loads": in_memory_lines(ndjson),
                    "a_file_loop_loads": file_loop(ndjson),
                    "b_ndjson_bodies": lambda: results.update(
                        ndjson=bodies(ndjson.as_uri(), mapper)
                    ),
                    "c0_orjson_format_only": format_only(parquet),
                    "c_parquet_bodies": lambda: results.update(
                        parquet=bodies(parquet.as_uri(), mapper)
                    ),
                },
            )
    finally:
        unpin(before)
    rate = {name: rows / t.cpu_median for name, t in timings.items()}
    wall_rate = {name: rows / t.wall_median for name, t in timings.items()}
    rows_ndjson, bodies_ndjson, bytes_ndjson = results["ndjson"]
    rows_parquet, bodies_parquet, bytes_parquet = results["parquet"]
    assert rows_ndjson == rows_parquet == rows
    out: dict[str, Any] = {
        "rows": rows,
        "dims": DIMS,
        "digits": digits,
        "vector_encoding": encoding,
        "ndjson_bytes": ndjson_bytes,
        "parquet_bytes": parquet_bytes,
        "repeats": repeats,
        "clock": "median CPU seconds of a single-threaded process pinned to one core",
    }
    for name in timings:
        out[f"{name}_rows_per_s"] = round(rate[name])
        out[f"{name}_rows_per_s_wall"] = round(wall_rate[name])
    out.update(
        {
            "b_over_a": round(rate["b_ndjson_bodies"] / rate["a_orjson_loads"], 3),
            "b_over_a_wall": round(wall_rate["b_ndjson_bodies"] / wall_rate["a_orjson_loads"], 3),
            "b_over_a_file_loop": round(rate["b_ndjson_bodies"] / rate["a_file_loop_loads"], 3),
            "ndjson_bodies": bodies_ndjson,
            "ndjson_body_bytes": bytes_ndjson,
            "ndjson_body_bytes_per_row": round(bytes_ndjson / rows_ndjson),
            "parquet_bodies": bodies_parquet,
            "parquet_body_bytes": bytes_parquet,
            "parquet_body_bytes_per_row": round(bytes_parquet / rows_parquet),
            "timings": {name: t.to_json() for name, t in timings.items()},
        }
    )
    return out


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
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    out = measure(
        args.rows,
        seed=args.seed,
        repeats=args.repeats,
        digits=args.digits,
        encoding=args.encoding,
    )
    out.pop("timings")
    with tempfile.TemporaryDirectory(prefix="elax-bench-") as tmp:
        resume_bytes, t_resume = resume_time(
            Path(tmp), args.resume_mb, args.seed, args.digits == "f64"
        )
    out["d_resume_file_bytes"] = resume_bytes
    out["d_resume_at_90pct_first_row_s"] = round(t_resume, 4)
    out.update(machine())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
