"""Time `elax-plan plan` over 10,000 small local source files, at two file sizes.

The process is started fresh each time (imports included), against an embedded
target with empty state, so the figure is what an operator waits for. The two
sizes show that planning cost follows the number of files, not their bytes.

    .venv/bin/python -m benchmarks.bench_plan [--files 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_plan


def make_files(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    row = b'{"id": %d, "vector": [0.1, 0.2, 0.3, 0.4], "title": "%s"}\n'
    for i in range(count):
        line = row % (i, b"x" * 20)
        body = line * max(1, size // len(line))
        (folder / f"part-{i:05d}.ndjson").write_bytes(body)


def plan_seconds(root: Path, folder: Path, repeat: int) -> list[float]:
    plan = write_plan(
        root / f"{folder.name}.yaml",
        name=f"bench-{folder.name.lower()}",
        url="embedded",
        store=(root / "store").as_uri(),
        namespace="bench",
        source=f"{folder}/*.ndjson",
        state=(root / "state").as_uri(),
    )
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "elax_plan", "plan", str(plan), "--format", "json"],
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"plan failed: {done.stderr.decode()}")
        doc = json.loads(done.stdout)
        assert len(doc["files"]) == len(list(folder.iterdir()))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="elax-bench-plan-") as tmp:
        root = Path(tmp)
        results = {}
        for label, size in (("1KB", 1_000), ("100KB", 100_000)):
            folder = root / label
            make_files(folder, args.files, size)
            times = plan_seconds(root, folder, args.repeat)
            results[label] = {"median_s": round(statistics.median(times), 3), "runs_s": times}
    print(json.dumps({"files": args.files, "plan": results, "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
