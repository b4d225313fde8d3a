"""Ingest throughput: ``elax-plan apply`` against a raw replay, a naive script and the emulator.

Generates an NDJSON dataset (fixed seed; 768-d float32 vectors written at their shortest
float32 digits, a title, a category and a description) into a temporary folder, then, for each
of ``repeats`` rounds, measures in turn — each time against a *fresh* ``elax-plan emulator``
process on a fresh ``file://`` store, all with the same flags (``EMULATOR_FLAGS``):

- ``ceiling``: the emulator's own ingest ceiling — the pre-built bodies posted by one minimal
  client, one after another (``emulator_ingest``'s method);
- ``raw``: the very same pre-built bodies replayed by the minimal client at the plan's
  concurrency (stdlib ``http.client``, one keep-alive connection per thread);
- ``raw_httpx``: the same replay through httpx, the HTTP library apply uses — not part of
  any target; it shows how much of the gap between ``apply`` and ``raw`` is the library;
- ``apply``: ``elax-plan apply PLAN --auto-approve`` as its own process (concurrency as
  ``raw``, ``throttle.max_wal_lag`` high enough never to pause, default verification with
  ``verify.delivery: full``); throughput is the run record's ingest phase (rows acknowledged ÷
  seconds from the start of writing to the last acknowledgement); its peak RSS is measured by
  ``benchmarks.peak_rss``;
- ``apply_c1`` and ``apply_c1_off``: the same apply at ``ingest.concurrency: 1``, with
  ``verify.delivery: full`` and ``off`` (nothing else differs). Their time is the *proven*
  span: from the start of writing to the end of the delivery proof after the writes (for
  ``off``, which proves nothing, the end of the writes) — ``ingest.ratio_vs_raw_c1`` compares
  ``apply_c1``'s rate over that span with ``ceiling`` (the same bodies on one connection),
  ``delivery.overhead`` is ``apply_c1``'s span ÷ ``apply_c1_off``'s;
- ``naive``: ``benchmarks.naive_ingest`` (stdlib json, 100-row batches, one request at a time).

The bodies for ``ceiling`` and ``raw`` are built by elax-plan's own data path with apply's
settings, so they are byte for byte the bodies apply sends (checked: same count, same bytes).

    .venv/bin/python -m benchmarks.bench_ingest [--rows 36000] [--files 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks import common
from benchmarks.bench_datapath import DIMS, write_ndjson
from benchmarks.common import machine
from benchmarks.emulator_ingest import replay, running_emulator
from elax_plan.apply.chunker import Chunker
from elax_plan.apply.readers import open_source
from elax_plan.apply.rows import InvalidRow, RowMapper

# The plan throttles on WAL lag and waits for the index: a background indexer stands in for
# the operator's indexer fleet (the real server has none).
EMULATOR_FLAGS = ("--indexer", "background", "--max-active-parts", "100000")
CHUNK_BYTES = 1 << 20
MAX_REQUEST_BYTES = 2 << 20
CONCURRENCY = 2
NAMESPACE = "bench"
KINDS = ("ceiling", "raw", "raw_httpx", "apply", "apply_c1", "apply_c1_off", "naive")
# Each apply kind: (ingest.concurrency, verify.delivery).
APPLY_KINDS = {
    "apply": (CONCURRENCY, "full"),
    "apply_c1": (1, "full"),
    "apply_c1_off": (1, "off"),
}


def write_dataset(folder: Path, rows: int, files: int, seed: int) -> dict[str, Any]:
    """``files`` NDJSON files holding ``rows`` rows in all (distinct ids); their description."""
    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-rows // files)
    written = 0
    paths = []
    for k in range(files):
        count = min(per_file, rows - written)
        path = folder / f"part-{k:03d}.ndjson"
        write_ndjson(path, count, seed + k, f64_digits=False, first_id=written)
        paths.append(path)
        written += count
    size = sum(p.stat().st_size for p in paths)
    return {
        "rows": written,
        "dims": DIMS,
        "files": len(paths),
        "bytes": size,
        "format": "ndjson",
        "seed": seed,
        "paths": [str(p) for p in paths],
    }


def apply_bodies(paths: list[str]) -> list[bytes]:
    """The write bodies apply sends for these files: elax-plan's own reader, mapper, chunker."""
    mapper = RowMapper(vector_dims=DIMS)
    out: list[bytes] = []
    for path in sorted(paths):
        chunker = Chunker(CHUNK_BYTES, MAX_REQUEST_BYTES)
        for raw in open_source(Path(path).as_uri()):
            mapped = mapper.map(raw)
            if isinstance(mapped, InvalidRow):
                raise SystemExit(f"benchmark row invalid: {mapped.reason}")
            closed = chunker.add(mapped)
            if isinstance(closed, InvalidRow):
                raise SystemExit(f"benchmark row too large: {closed.reason}")
            if closed is not None:
                out.append(closed.body)
        last = chunker.flush()
        if last is not None:
            out.append(last.body)
    return out


def write_plan(
    root: Path,
    url: str,
    store: str,
    source_glob: str,
    name: str,
    concurrency: int = CONCURRENCY,
    delivery: str = "full",
) -> Path:
    return common.write_plan(
        root / f"{name}.yaml",
        name=name,
        url=url,
        store=store,
        namespace=NAMESPACE,
        source=source_glob,
        state=(root / "state").as_uri(),
        vector_dims=DIMS,
        sections=f"ingest:\n  chunk_bytes: {CHUNK_BYTES}\n  concurrency: {concurrency}\n"
        "throttle:\n  max_wal_lag: 1000000\n  resume_wal_lag: 1000\n"
        f"verify:\n  delivery: {delivery}\n",
        # The emulator without --race-appends serialises appends: concurrency 2 is safe there
        # (elax-plan refuses it on a node it cannot see serialising, hazard H1).
        target_extra="  serialises_appends: true\n",
    )


def run_apply(
    root: Path,
    url: str,
    store: str,
    source_glob: str,
    concurrency: int = CONCURRENCY,
    delivery: str = "full",
) -> dict[str, Any]:
    """One ``elax-plan apply`` process; its ingest figures, wall time and peak RSS, and the
    proven span (``proven_s``: start of writing to the end of the delivery proof after the
    writes; for ``verify.delivery: off`` the end of the writes)."""
    plan = write_plan(root, url, store, source_glob, "bench-ingest", concurrency, delivery)
    command = [sys.executable, "-m", "elax_plan", "--quiet", "apply", str(plan)]
    usage_file = root / "apply-usage.json"
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.peak_rss",
            str(usage_file),
            "--",
            *command,
            "--auto-approve",
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"apply failed ({done.returncode}): {done.stderr[-2000:]}")
    usage = json.loads(usage_file.read_text())
    [summary] = glob.glob(str(root / "state" / "bench-ingest" / "runs" / "*" / "summary.json"))
    record = orjson.loads(Path(summary).read_bytes())
    ingest, workload, proofs = record["ingest"], record["workload"], record["delivery"]
    if proofs["mode"] != delivery or proofs["overwritten"] or proofs["resent"]:
        raise SystemExit(f"apply's delivery proof is not what was measured: {proofs}")
    events = [
        orjson.loads(line)
        for line in (Path(summary).parent / "events.ndjson").read_bytes().splitlines()
    ]
    proof_s = _proof_seconds(events)
    read_back = sum(e["read"] for e in events if e["event"] == "delivery_proof")
    if (proof_s is None) != (delivery == "off") or read_back != (
        workload["requests"] if delivery == "full" else 0
    ):
        raise SystemExit(
            f"apply with verify.delivery: {delivery} proved {proofs['proofs']} times and read "
            f"back {read_back} of {workload['requests']} WAL objects"
        )
    return {
        "rows": workload["rows"],
        "bytes": workload["bytes"],
        "requests": workload["requests"],
        "seconds": ingest["duration_s"],
        "concurrency": concurrency,
        "delivery": delivery,
        "proof_after_writes_s": proof_s,
        "proven_s": round(ingest["duration_s"] + (proof_s or 0.0), 3),
        "proofs": proofs["proofs"],
        "proofs_during_writes": proofs["proofs_during_writes"],
        "read_back": read_back,
        "process_wall_s": round(wall, 3),
        "peak_rss_mb": round(usage["peak_rss_kb"] / 1024, 1),
        "cpu_s": round(usage["user_s"] + usage["sys_s"], 2),
        "outcome": record["outcome"],
        "throttle_pauses": record["throttle"]["pauses"],
        "retries": record["retries"]["total"],
    }


def _proof_seconds(events: list[dict[str, Any]]) -> float | None:
    """Seconds from the end of the writes to the end of the delivery proof after them (the
    events are timestamped to the millisecond); None when no proof ran after the writes."""
    finished = next(e["ts"] for e in events if e["event"] == "writes_finished")
    after = [
        e["ts"] for e in events if e["event"] == "delivery_proof" and e.get("phase") != "writes"
    ]
    return round(max(after) - finished, 3) if after else None


def run_naive(url: str, paths: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.naive_ingest",
            "--url",
            url,
            "--namespace",
            NAMESPACE,
            "--dims",
            str(DIMS),
            *sorted(paths),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"naive script failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _rates(runs: list[dict[str, Any]], seconds: str = "seconds") -> dict[str, Any]:
    """Median rates of ``runs`` over their ``seconds`` key (``proven_s``: writes + proof)."""
    rows_per_s = [r["rows"] / r[seconds] for r in runs]
    mb_per_s = [r["bytes"] / 1e6 / r[seconds] for r in runs]
    return {
        "over": seconds,
        "runs": runs,
        "rows_per_s": round(statistics.median(rows_per_s), 1),
        "mb_per_s": round(statistics.median(mb_per_s), 2),
        "rows_per_s_runs": [round(x, 1) for x in rows_per_s],
    }


def measure(rows: int, files: int, repeats: int, seed: int = 11) -> dict[str, Any]:
    """The whole ingest comparison; raw figures and the two ratios."""
    with tempfile.TemporaryDirectory(prefix="elax-bench-ingest-") as tmp:
        root = Path(tmp)
        dataset = write_dataset(root / "data", rows, files, seed)
        paths = dataset.pop("paths")
        source_glob = f"{root / 'data'}/*.ndjson"
        bodies = apply_bodies(paths)
        body_bytes = sum(len(b) for b in bodies)
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for round_no in range(repeats):
            for kind in runs:
                work = root / f"{kind}-{round_no}"
                work.mkdir()
                store = (work / "store").as_uri()
                with running_emulator(store, *EMULATOR_FLAGS) as url:
                    if kind == "ceiling":
                        seconds = replay(url, NAMESPACE, bodies, concurrency=1)
                        result = {"rows": rows, "bytes": body_bytes, "seconds": seconds}
                    elif kind in ("raw", "raw_httpx"):
                        library = "httpx" if kind == "raw_httpx" else "http.client"
                        seconds = replay(url, NAMESPACE, bodies, CONCURRENCY, library)
                        result = {"rows": rows, "bytes": body_bytes, "seconds": seconds}
                    elif kind in APPLY_KINDS:
                        result = run_apply(work, url, store, source_glob, *APPLY_KINDS[kind])
                        if (result["requests"], result["bytes"]) != (len(bodies), body_bytes):
                            raise SystemExit(
                                "apply did not send the replayed bodies: "
                                f"{result['requests']} requests / {result['bytes']} bytes, "
                                f"expected {len(bodies)} / {body_bytes}"
                            )
                    else:
                        result = run_naive(url, paths)
                if result["rows"] != rows:
                    raise SystemExit(f"{kind} wrote {result['rows']} rows, expected {rows}")
                runs[kind].append(result)
                shutil.rmtree(work, ignore_errors=True)
    figures = {
        kind: _rates(r, "proven_s" if kind in ("apply_c1", "apply_c1_off") else "seconds")
        for kind, r in runs.items()
    }
    apply_rate = figures["apply"]["rows_per_s"]
    full_s = [r["proven_s"] for r in runs["apply_c1"]]
    off_s = [r["proven_s"] for r in runs["apply_c1_off"]]
    c1_ingest_rate = statistics.median(r["rows"] / r["seconds"] for r in runs["apply_c1"])
    best_emulator = max(figures["ceiling"]["rows_per_s"], figures["raw"]["rows_per_s"])
    return {
        "dataset": dataset,
        "bodies": {"count": len(bodies), "bytes": body_bytes},
        "concurrency": CONCURRENCY,
        "emulator_flags": list(EMULATOR_FLAGS),
        "repeats": repeats,
        **figures,
        "ratio_vs_raw": round(apply_rate / figures["raw"]["rows_per_s"], 3),
        "ratio_vs_naive": round(apply_rate / figures["naive"]["rows_per_s"], 3),
        "raw_httpx_vs_raw": round(
            figures["raw_httpx"]["rows_per_s"] / figures["raw"]["rows_per_s"], 3
        ),
        "apply_vs_emulator_best": round(apply_rate / best_emulator, 3),
        # Rates over the proven span (writes + the delivery proof after them).
        "ratio_vs_raw_c1": round(
            figures["apply_c1"]["rows_per_s"] / figures["ceiling"]["rows_per_s"], 3
        ),
        # The same apply_c1 runs over their writes alone (the proof left out): what the proof
        # costs this ratio.
        "ratio_vs_raw_c1_writes_only": round(c1_ingest_rate / figures["ceiling"]["rows_per_s"], 3),
        "delivery_overhead": round(statistics.median(full_s) / statistics.median(off_s), 3),
        "delivery_overhead_paired": [round(f / o, 3) for f, o in zip(full_s, off_s, strict=True)],
        # Within each apply_c1 run: (writes + proof) ÷ its own writes. Not the target (that
        # compares runs with and without the proof), but free of the run-to-run noise.
        "delivery_overhead_within_run": round(
            statistics.median(r["proven_s"] / r["seconds"] for r in runs["apply_c1"]), 3
        ),
        "apply_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["apply"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=36_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out = measure(args.rows, args.files, args.repeats)
    for kind in KINDS:
        out[kind].pop("runs")
    out["machine"] = machine()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
