"""Time to the first acknowledged write when ``elax-plan apply`` resumes at 90 % of a large file.

Writes one NDJSON file of about ``--megabytes`` (768-d float32 vectors, fixed seed) and, for
each of ``--repeats`` runs, against a fresh emulator process and fresh state:

1. records, through elax-plan's own state layer (lease, ledger with compare-and-swap), the
   ledger an interrupted apply leaves behind when it stopped 90 % of the way through the file:
   the file ``partial`` at the byte offset and line of row 90 %, with the listing's
   fingerprint — so ``plan`` shows it as ``>`` resumes;
2. starts ``elax-plan apply PLAN --auto-approve`` and polls the emulator's WAL folder every
   millisecond: the first WAL object appears when the emulator acknowledges the first write
   (it is stored before the answer is sent);
3. stops apply with SIGINT (exit 130: checkpoint saved) — the rest of the file is not needed.

The figure is seconds from starting the process (interpreter start, imports, plan, lease,
seek, first body) to that first acknowledged write; the median is reported.

    .venv/bin/python -m benchmarks.bench_resume [--megabytes 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks import common
from benchmarks.bench_datapath import DIMS, documents, write_ndjson
from benchmarks.common import machine, quiet_logs
from benchmarks.emulator_ingest import running_emulator
from elax_plan.live.source import list_source
from elax_plan.spec import load_plan
from elax_plan.state import FileEntry, Ledger, LedgerStore, TargetIdentity, acquire, open_backend

NAMESPACE = "bench"
PLAN_NAME = "bench-resume"


def write_plan(root: Path, url: str, store: str, source: Path) -> Path:
    return common.write_plan(
        root / "resume.yaml",
        name=PLAN_NAME,
        url=url,
        store=store,
        namespace=NAMESPACE,
        source=source,
        state=(root / "state").as_uri(),
        vector_dims=DIMS,
    )


def record_interrupted_run(plan: Path, offset: int, line: int) -> None:
    """The ledger an apply interrupted after ``line`` rows (ending at byte ``offset``) leaves."""
    spec = load_plan(plan)
    [listed] = list_source(spec.source).files
    t = spec.target
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    lease = acquire(backend, spec.name, "apply")
    try:
        writer = LedgerStore(backend, spec.name).claim(lease)
        ledger = Ledger.new(
            spec.name, TargetIdentity.of(t.url, t.store, t.namespace), t.distance_metric, DIMS
        ).with_file(
            FileEntry(
                url=listed.url,
                fingerprint=listed.fingerprint,
                size=listed.size,
                status="partial",
                resume={"offset": offset, "line": line, "row": 0},
                rows=line,
                bytes=offset,
            )
        )
        writer.save(ledger)
    finally:
        lease.release()


def first_write_seconds(plan: Path, wal: Path, timeout: float = 60.0) -> float:
    """Start apply; seconds until the first WAL object appears; then stop apply with SIGINT."""
    command = [sys.executable, "-m", "elax_plan", "--quiet", "apply", str(plan)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "--auto-approve", "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while True:
            if wal.is_dir() and any(wal.iterdir()):
                elapsed = time.perf_counter() - started
                break
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"apply ended ({proc.returncode}) before writing: {err[-2000:]}")
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"no write within {timeout:g}s")
            time.sleep(0.001)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return elapsed


def measure(megabytes: int, repeats: int, seed: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="elax-bench-resume-") as tmp:
        root = Path(tmp)
        source = root / "large.ndjson"
        sample = next(documents(1, seed, False))
        line_bytes = len(orjson.dumps(sample, option=orjson.OPT_SERIALIZE_NUMPY)) + 1
        offsets = write_ndjson(source, max(10, (megabytes << 20) // line_bytes), seed, False)
        size = source.stat().st_size
        at = int(len(offsets) * 0.9)
        runs = []
        for k in range(repeats):
            work = root / f"run-{k}"
            work.mkdir()
            store = work / "store"
            with running_emulator(store.as_uri(), "--indexer", "background") as url:
                plan = write_plan(work, url, store.as_uri(), source)
                record_interrupted_run(plan, offsets[at], at)
                wal = store / "namespaces" / NAMESPACE / "wal"
                runs.append(first_write_seconds(plan, wal))
                first = min(wal.iterdir()).read_bytes()
                if f'"id":"{at}"'.encode() not in first:  # the row at 90 %, not the file's start
                    raise SystemExit("the first write did not start at the resume point")
    return {
        "dataset": {"rows": len(offsets), "dims": DIMS, "bytes": size, "format": "ndjson"},
        "resume_row": at,
        "resume_offset": offsets[at],
        "runs_s": [round(t, 4) for t in runs],
        "first_write_seconds": round(statistics.median(runs), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out = measure(args.megabytes, args.repeats)
    out["machine"] = machine()
    print(json.dumps(out))


if __name__ == "__main__":
    quiet_logs()
    main()
