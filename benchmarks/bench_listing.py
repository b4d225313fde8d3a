"""Measure planning's source reads: listing + fingerprinting, and the bounded sample.

Creates two temporary directories of NDJSON files — 10,000 files of about 1 KB and
10,000 files of about 100 KB (rows with 64-d vectors and a few attributes) — and
times, for each, ``list_source`` over ``dir/*.ndjson`` and ``sample_source`` on the
result (best and median of ``--repeat`` runs; the page cache is warm after the
first). Issue #7's target: planning over 10,000 small local files ≤ 3 s in total,
independent of file size, so both numbers must be well under a second and close
to each other.

    .venv/bin/python -m benchmarks.bench_listing [--files 10000] [--repeat 5]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

from elax_plan.live.source import list_source, sample_source
from elax_plan.spec.model import AttributesSpec, SourceSpec


def ndjson_block(target_bytes: int, seed: int) -> bytes:
    """NDJSON rows of about ``target_bytes`` in total (at least one row)."""
    rng = random.Random(seed)
    out = bytearray()
    i = 0
    while not out or len(out) < target_bytes:
        row = {
            "id": seed * 1_000_000 + i,
            "vector": [round(rng.uniform(-1, 1), 6) for _ in range(64)],
            "title": f"item {i}",
            "category": f"c{i % 17}",
        }
        line = json.dumps(row).encode() + b"\n"
        if out and len(out) + len(line) > target_bytes:
            break
        out += line
        i += 1
    return bytes(out)


def make_files(directory: Path, count: int, size: int) -> int:
    data = ndjson_block(size, seed=size)
    for i in range(count):
        (directory / f"part-{i:06d}.ndjson").write_bytes(data)
    return len(data)


def spec(uri: str) -> SourceSpec:
    return SourceSpec(
        uris=(uri,),
        format="ndjson",
        compression="infer",
        storage_options=MappingProxyType({}),
        id_field="id",
        vector_field="vector",
        attributes=AttributesSpec(include=None, rename=MappingProxyType({})),
    )


def measure(directory: Path, repeat: int) -> dict[str, Any]:
    source = spec(f"{directory.as_uri()}/*.ndjson")
    listing_s: list[float] = []
    sample_s: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        listing = list_source(source)
        t1 = time.perf_counter()
        sample = sample_source(listing, source)
        t2 = time.perf_counter()
        listing_s.append(t1 - t0)
        sample_s.append(t2 - t1)
    total = [a + b for a, b in zip(listing_s, sample_s, strict=True)]
    return {
        "files": len(listing.files),
        "list_s_best": round(min(listing_s), 4),
        "list_s_median": round(statistics.median(listing_s), 4),
        "sample_s_best": round(min(sample_s), 4),
        "sample_s_median": round(statistics.median(sample_s), 4),
        "total_s_first": round(total[0], 4),
        "total_s_median": round(statistics.median(total), 4),
        "sampled_rows": sample.sampled_rows,
        "sampled_bytes": sample.sampled_bytes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"benchmark": "listing", "files_per_case": args.files}
    for label, size in (("1KB", 1_000), ("100KB", 100_000)):
        with tempfile.TemporaryDirectory(prefix=f"elax-bench-{label}-") as tmp:
            file_bytes = make_files(Path(tmp), args.files, size)
            result = measure(Path(tmp), args.repeat)
            result["file_bytes"] = file_bytes
            results[label] = result
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
