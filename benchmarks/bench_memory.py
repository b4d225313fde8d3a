"""Peak RSS of `elax-plan apply` on a source and on one 10x larger: memory must not follow size.

The emulator runs as its own process so only apply is measured (ru_maxrss of
the finished child). Datasets: 768-d float vectors with a title, fixed seed,
in a temporary folder that is removed afterwards.

    .venv/bin/python -m benchmarks.bench_memory [--rows 2500]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import orjson

from benchmarks.common import write_plan
from benchmarks.emulator_ingest import start_emulator


def write_source(path: Path, rows: int, dims: int = 768, seed: int = 3) -> int:
    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        for start in range(0, rows, 1000):
            block = rng.standard_normal((min(1000, rows - start), dims)).astype(np.float32)
            for i, vec in enumerate(block):
                f.write(
                    orjson.dumps(
                        {"id": start + i, "vector": vec, "title": f"row {start + i}"},
                        option=orjson.OPT_SERIALIZE_NUMPY,
                    )
                    + b"\n"
                )
    return path.stat().st_size


def peak_rss_mb(root: Path, url: str, store: str, source: Path, name: str) -> float:
    plan = write_plan(
        root / f"{name}.yaml",
        name=name,
        url=url,
        store=store,
        namespace=name,
        source=source,
        state=(root / "state").as_uri(),
        sections="ingest:\n  chunk_bytes: 1MiB\nthrottle:\n  max_wal_lag: 64\n  resume_wal_lag: 8\n",
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-m", "elax_plan", "--quiet", "apply", str(plan), "--auto-approve"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if after <= before:
        raise SystemExit("ru_maxrss did not grow: run each size in a fresh benchmark process")
    return round(after / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2500)
    parser.add_argument("--scale", type=int, default=1, help="internal: which size to run")
    args = parser.parse_args()
    if args.scale == 1:
        # ru_maxrss of children is a running maximum: measure each size in its own process.
        out = {}
        for scale in (1, 10):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.bench_memory",
                    "--rows",
                    str(args.rows),
                    "--scale",
                    str(scale * 100),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            out[f"x{scale}"] = json.loads(done.stdout)
        print(json.dumps({"apply_peak_rss": out, "cores": os.cpu_count()}))
        return
    scale = args.scale // 100
    with tempfile.TemporaryDirectory(prefix="elax-bench-mem-") as tmp:
        root = Path(tmp)
        source = root / "src.ndjson"
        size = write_source(source, args.rows * scale)
        store = (root / "store").as_uri()
        emulator, url = start_emulator(
            store, "--indexer", "background", "--max-active-parts", "100000"
        )
        try:
            rss = peak_rss_mb(root, url, store, source, f"mem{scale}")
        finally:
            emulator.terminate()
            emulator.wait(30)
    print(
        json.dumps(
            {"rows": args.rows * scale, "source_mb": round(size / 1e6, 1), "peak_rss_mb": rss}
        )
    )


if __name__ == "__main__":
    main()
