"""``make bench``: run every benchmark, print the table of the targets, save the results.

    .venv/bin/python -m benchmarks.run [--scale full|small] [--out benchmarks/results]

The targets are issue #7's and issue #14's (``ingest.ratio_vs_raw_c1``, ``delivery.overhead``).
``full`` (the default) is the committed measurement (about five minutes on the project's 2-core
machine before issue #14's concurrency-1 apply runs were added, which add roughly two or three);
``small`` is a quick check of two minutes or so with smaller datasets and the same method. Writes ``<out>/latest.json`` — one entry per target, each with the value, the target,
whether it is met, the raw figures it was computed from, the dataset and the machine — and, for
``full``, ``<out>/full-<date>.md`` with the table and ``<out>/full-<date>.json``, a copy of the
JSON that later runs do not overwrite (``small`` writes its pair under ``<out>/tmp/``, which git
ignores). Every dataset is generated with a fixed seed into a
temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import bench_datapath, bench_ingest, bench_plan, bench_resume
from benchmarks.common import in_fresh_process, machine, quiet_logs


@dataclass(frozen=True)
class Scale:
    datapath_rows: int
    datapath_repeats: int
    datapath_processes: int
    ingest_rows: int
    ingest_files: int
    ingest_repeats: int
    plan_files: int
    plan_sizes: tuple[tuple[str, int], ...]
    plan_repeats: int
    resume_megabytes: int
    resume_repeats: int


SCALES = {
    "full": Scale(
        datapath_rows=20_000,
        datapath_repeats=7,
        datapath_processes=3,
        ingest_rows=36_000,  # ≈ 307 MB of NDJSON
        ingest_files=4,
        ingest_repeats=5,
        plan_files=10_000,
        plan_sizes=(("1KB", 1_000), ("100KB", 100_000)),
        plan_repeats=3,
        resume_megabytes=1024,
        resume_repeats=3,
    ),
    "small": Scale(
        datapath_rows=5_000,
        datapath_repeats=3,
        datapath_processes=2,
        ingest_rows=4_000,
        ingest_files=2,
        ingest_repeats=3,
        plan_files=10_000,
        plan_sizes=(("1KB", 1_000),),
        plan_repeats=3,
        resume_megabytes=128,
        resume_repeats=3,
    ),
}


@dataclass(frozen=True)
class Target:
    key: str
    what: str
    op: str  # ">=" or "<="
    bound: float
    unit: str

    def met(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound


TARGETS = [
    Target("ingest.ratio_vs_raw", "apply ÷ raw replay of the same bodies", ">=", 0.9, "×"),
    Target(
        "ingest.ratio_vs_raw_c1",
        "rows/s: apply at concurrency 1, delivery proof on (writes + proof) ÷ raw replay on "
        "one connection",
        ">=",
        0.9,
        "×",
    ),
    Target(
        "delivery.overhead",
        "seconds: apply (writes + proof) with delivery proof ÷ without, concurrency 1",
        "<=",
        1.10,
        "×",
    ),
    Target("ingest.ratio_vs_naive", "apply ÷ naive stdlib-json script", ">=", 3, "×"),
    Target("ndjson.ratio_vs_parse", "NDJSON → bodies ÷ orjson.loads per line", ">=", 0.7, "×"),
    Target("parquet.rows_per_s", "Parquet → bodies, one core", ">=", 60_000, "rows/s"),
    Target("plan.files_10k_seconds", "elax-plan plan over 10,000 small files", "<=", 3, "s"),
    Target(
        "resume.first_write_seconds", "start → first ack, resume at 90 % of 1 GB", "<=", 1.5, "s"
    ),
    Target("apply.peak_rss_mb", "peak RSS of elax-plan apply, ingest dataset", "<=", 250, "MB"),
]


def _step(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    print(f"· {name} …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    out = run()
    print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return out


def measure_datapath(scale: Scale) -> dict[str, Any]:
    """bench_datapath in ``datapath_processes`` fresh processes; the median of each figure."""
    import statistics

    runs = [
        in_fresh_process(
            bench_datapath.measure, scale.datapath_rows, repeats=scale.datapath_repeats
        )
        for _ in range(scale.datapath_processes)
    ]
    combined = {k: v for k, v in runs[0].items() if k != "timings"}
    per_process = []
    for run in runs:
        figures = {
            k: v for k, v in run.items() if k.endswith(("_rows_per_s", "_wall")) or "_over_" in k
        }
        per_process.append({**figures, "timings": run["timings"]})
        for key in figures:
            middle = statistics.median(r[key] for r in runs)
            combined[key] = round(middle, 3) if "_over_" in key else round(middle)
    combined["processes"] = per_process
    return combined


def measure_plan(scale: Scale) -> dict[str, Any]:
    """``elax-plan plan`` over ``plan_files`` files at each size (bench_plan's method)."""
    import statistics

    out: dict[str, Any] = {"files": scale.plan_files, "repeats": scale.plan_repeats}
    with tempfile.TemporaryDirectory(prefix="elax-bench-plan-") as tmp:
        root = Path(tmp)
        for label, size in scale.plan_sizes:
            folder = root / label
            bench_plan.make_files(folder, scale.plan_files, size)
            data_bytes = sum(p.stat().st_size for p in folder.iterdir())
            rows = sum(p.read_bytes().count(b"\n") for p in folder.iterdir())
            times = bench_plan.plan_seconds(root, folder, scale.plan_repeats)
            out[label] = {
                "rows": rows,
                "file_bytes": size,
                "bytes": data_bytes,
                "runs_s": [round(t, 3) for t in times],
                "median_s": round(statistics.median(times), 3),
            }
    return out


def run_all(scale_name: str) -> dict[str, Any]:
    scale = SCALES[scale_name]
    host = machine()
    datapath = _step(
        "data path (NDJSON and Parquet → bodies, one core)",
        lambda: measure_datapath(scale),
    )
    ingest = _step(
        "ingest (emulator ceiling, raw replay, apply at concurrency 2 and 1, naive script)",
        lambda: bench_ingest.measure(scale.ingest_rows, scale.ingest_files, scale.ingest_repeats),
    )
    plan = _step("plan over 10,000 files", lambda: measure_plan(scale))
    resume = _step(
        "resume at 90 %",
        lambda: bench_resume.measure(scale.resume_megabytes, scale.resume_repeats),
    )
    datapath_set = {
        "rows": datapath["rows"],
        "dims": datapath["dims"],
        "bytes": {"ndjson": datapath["ndjson_bytes"], "parquet": datapath["parquet_bytes"]},
    }
    plan_set = {
        "rows": plan["1KB"]["rows"],
        "dims": 4,
        "files": plan["files"],
        "bytes": plan["1KB"]["bytes"],
        "file_bytes": plan["1KB"]["file_bytes"],
    }
    ingest_raw = {
        k: ingest[k]
        for k in (
            "ceiling",
            "raw",
            "raw_httpx",
            "apply",
            "apply_c1",
            "apply_c1_off",
            "naive",
            "raw_httpx_vs_raw",
            "ratio_vs_raw_c1_writes_only",
            "delivery_overhead_paired",
            "delivery_overhead_within_run",
            "bodies",
            "concurrency",
            "emulator_flags",
            "repeats",
            "apply_vs_emulator_best",
        )
    }
    values: dict[str, tuple[float, dict[str, Any], dict[str, Any]]] = {
        "ingest.ratio_vs_raw": (ingest["ratio_vs_raw"], ingest_raw, ingest["dataset"]),
        "ingest.ratio_vs_raw_c1": (ingest["ratio_vs_raw_c1"], ingest_raw, ingest["dataset"]),
        "delivery.overhead": (ingest["delivery_overhead"], ingest_raw, ingest["dataset"]),
        "ingest.ratio_vs_naive": (ingest["ratio_vs_naive"], ingest_raw, ingest["dataset"]),
        "ndjson.ratio_vs_parse": (
            datapath["b_over_a"],
            _pick(datapath, "a_", "b_", "ndjson_", "repeats", "clock", "processes"),
            datapath_set,
        ),
        "parquet.rows_per_s": (
            datapath["c_parquet_bodies_rows_per_s"],
            _pick(datapath, "c0_", "c_", "parquet_", "repeats", "clock", "processes"),
            datapath_set,
        ),
        "plan.files_10k_seconds": (plan["1KB"]["median_s"], plan, plan_set),
        "resume.first_write_seconds": (
            resume["first_write_seconds"],
            {k: v for k, v in resume.items() if k != "dataset"},
            resume["dataset"],
        ),
        "apply.peak_rss_mb": (
            ingest["apply_peak_rss_mb"],
            {"runs_mb": [r["peak_rss_mb"] for r in ingest["apply"]["runs"]]},
            ingest["dataset"],
        ),
    }
    results: dict[str, Any] = {
        "scale": scale_name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": host,
    }
    for target in TARGETS:
        value, raw, dataset = values[target.key]
        results[target.key] = {
            "value": value,
            "target": f"{target.op} {target.bound:g}",
            "unit": target.unit,
            "met": target.met(value),
            "what": target.what,
            "raw": raw,
            "dataset": dataset,
            "machine": host,
        }
    return results


def _median_of(figure: dict[str, Any], key: str) -> float:
    """The median of ``key`` over the runs behind one ingest figure."""
    import statistics

    return float(statistics.median(r[key] for r in figure["runs"]))


def _pick(source: dict[str, Any], *prefixes: str) -> dict[str, Any]:
    return {k: v for k, v in source.items() if any(k.startswith(p) for p in prefixes)}


def _commit() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
        return rev + ("+changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _fmt(value: float, unit: str) -> str:
    if unit == "rows/s":
        return f"{value:,.0f} rows/s"
    if unit == "×":
        return f"{value:.2f}×"
    return f"{value:g} {unit}"


def table(results: dict[str, Any]) -> str:
    """The markdown table: one line per target, met or not met."""
    lines = [
        "| key | what | measured | target | |",
        "|---|---|---|---|---|",
    ]
    for target in TARGETS:
        entry = results[target.key]
        verdict = "met" if entry["met"] else "**not met**"
        lines.append(
            f"| `{target.key}` | {target.what} | {_fmt(entry['value'], target.unit)} "
            f"| {target.op.replace('>=', '≥').replace('<=', '≤')} "
            f"{_fmt(target.bound, target.unit)} | {verdict} |"
        )
    return "\n".join(lines)


def details(results: dict[str, Any]) -> str:
    """The raw figures behind the table, in a few lines."""
    ingest = results["ingest.ratio_vs_raw"]["raw"]
    ds = results["ingest.ratio_vs_raw"]["dataset"]
    dp = results["ndjson.ratio_vs_parse"]["raw"]
    pq = results["parquet.rows_per_s"]["raw"]
    plan = results["plan.files_10k_seconds"]["raw"]
    resume = results["resume.first_write_seconds"]
    m = results["machine"]
    rows = [
        f"Scale `{results['scale']}`, {results['date']}, commit `{results['commit']}`; "
        f"{m['cores']} cores, Python {m['python']}. Medians of the runs shown.",
        "",
        f"- Ingest dataset: {ds['rows']:,} rows × {ds['dims']}-d in {ds['files']} NDJSON files, "
        f"{ds['bytes'] / 1e6:,.0f} MB → {ingest['bodies']['count']} bodies "
        f"({ingest['bodies']['bytes'] / 1e6:,.0f} MB); concurrency {ingest['concurrency']}; "
        f"emulator `{' '.join(ingest['emulator_flags'])}`, a fresh one per run.",
    ]
    for kind, label in (
        ("ceiling", "emulator ceiling (1 client, sequential)"),
        ("raw", f"raw replay (concurrency {ingest['concurrency']})"),
        ("raw_httpx", "the same replay through httpx (apply's HTTP library; no target)"),
        ("apply", "elax-plan apply"),
        ("apply_c1", "elax-plan apply, concurrency 1, delivery proof full (writes + proof)"),
        ("apply_c1_off", "elax-plan apply, concurrency 1, delivery proof off (writes)"),
        ("naive", "naive script"),
    ):
        fig = ingest[kind]
        runs = ", ".join(f"{x:,.0f}" for x in fig["rows_per_s_runs"])
        rows.append(
            f"  - {label}: {fig['rows_per_s']:,.0f} rows/s, {fig['mb_per_s']:.1f} MB/s "
            f"(runs: {runs} rows/s)"
        )
    rows += [
        f"  - apply reached {ingest['apply_vs_emulator_best']:.0%} of the best rate the "
        "emulator took from the minimal client in this run; the httpx replay reached "
        f"{ingest['raw_httpx_vs_raw']:.0%} of the raw replay.",
        "  - concurrency 1 against the ceiling (the same bodies on one connection): "
        f"{results['ingest.ratio_vs_raw_c1']['value']:.3f} over writes + delivery proof, "
        f"{ingest['ratio_vs_raw_c1_writes_only']:.3f} over the writes alone; delivery proof "
        f"after the writes: {_median_of(ingest['apply_c1'], 'proof_after_writes_s')} s "
        f"(median), {_median_of(ingest['apply_c1'], 'proofs_during_writes'):g} proofs during "
        "the writes; time with ÷ without the proof, round by round: "
        + ", ".join(f"{x:.3f}" for x in ingest["delivery_overhead_paired"])
        + "; (writes + proof) ÷ the same run's writes, median: "
        + f"{ingest['delivery_overhead_within_run']:.3f}.",
        f"- Data path (median of {len(dp['processes'])} fresh processes × {dp['repeats']} "
        f"interleaved runs, one core, {dp['clock']}): "
        f"orjson.loads per line {dp['a_orjson_loads_rows_per_s']:,} rows/s; the file loop "
        f"`for line in f: orjson.loads(line)` {dp['a_file_loop_loads_rows_per_s']:,} rows/s; "
        f"NDJSON → bodies {dp['b_ndjson_bodies_rows_per_s']:,} rows/s "
        f"(÷ file loop: {dp['b_over_a_file_loop']:.2f}); "
        f"orjson formatting the float32 vectors alone {pq['c0_orjson_format_only_rows_per_s']:,} "
        f"rows/s; Parquet → bodies {pq['c_parquet_bodies_rows_per_s']:,} rows/s.",
        "- Plan over "
        + ", ".join(
            f"{plan['files']:,} files of {v['file_bytes']:,} bytes: {v['median_s']} s"
            for k, v in plan.items()
            if isinstance(v, dict)
        )
        + ".",
        f"- Resume: {resume['dataset']['bytes'] / 1e6:,.0f} MB NDJSON, resumed at row "
        f"{resume['raw']['resume_row']:,}; runs {resume['raw']['runs_s']} s.",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    quiet_logs()
    results = run_all(args.scale)
    text = f"{table(results)}\n\n{details(results)}\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    results_json = json.dumps(results, indent=2) + "\n"
    (args.out / "latest.json").write_text(results_json)
    day = results["date"][:10]
    folder = args.out if args.scale == "full" else args.out / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    # latest.json is whatever ran last (a small run too); the dated pair keeps each run.
    md = folder / f"{args.scale}-{day}.md"
    md.write_text(f"# Benchmarks: `{args.scale}`, {day}\n\n{text}")
    dated = folder / f"{args.scale}-{day}.json"
    dated.write_text(results_json)
    print(f"wrote {args.out / 'latest.json'}, {md} and {dated}", file=sys.stderr)


if __name__ == "__main__":
    main()
