"""The run record (``runs/<run_id>/summary.json``) and its markdown rendering.

Pure. ``build_run_record`` turns what one apply saw — the execution plan JSON,
the pipeline numbers, the event stream, the verification verdicts and the WAL
trim — into one JSON document (described by ``schemas/run-record.schema.json``);
``render_summary`` renders only that document with a sandboxed jinja2
template (strict undefined), so a summary can always be rendered again later
(``elax-plan summary``) from the stored record.
"""

from __future__ import annotations

import importlib.resources
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from elax_plan.execution_plan import format_bytes, format_count

RECORD_VERSION = "1.0"
CHART_POINTS = 40
SUMMARY_LIMIT = 60_000

Outcome = str  # "succeeded" | "verification_failed" | "failed" | "interrupted"


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _throttle_actions(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    open_action: dict[str, Any] | None = None
    for e in events:
        if e["event"] == "throttle_pause":
            open_action = {
                "start": e["ts"],
                "end": None,
                "lag_before": e.get("lag"),
                "lag_after": None,
            }
            actions.append(open_action)
        elif e["event"] == "throttle_resume" and open_action is not None:
            open_action["end"] = e["ts"]
            open_action["lag_after"] = e.get("lag")
            open_action = None
    return actions


def _downsample(
    points: list[tuple[float, float]], n: int = CHART_POINTS
) -> list[tuple[float, float]]:
    if len(points) <= n:
        return points
    step = len(points) / n
    return [points[int(i * step)] for i in range(n - 1)] + [points[-1]]


def _charts(events: Sequence[Mapping[str, Any]], start: float) -> dict[str, Any]:
    lag = [(e["ts"] - start, float(e["lag"])) for e in events if e["event"] == "lag"]
    progress = [
        (e["ts"] - start, float(e.get("rows_acked", 0)))
        for e in events
        if e["event"] == "lag" and "rows_acked" in e
    ]
    throughput: list[tuple[float, float]] = []
    for (t0, r0), (t1, r1) in itertools.pairwise(progress):
        if t1 > t0:
            throughput.append((t1, max(0.0, (r1 - r0) / (t1 - t0))))
    return {
        "lag": [[round(t, 1), v] for t, v in _downsample(lag)],
        "throughput": [[round(t, 1), round(v)] for t, v in _downsample(throughput)],
    }


def build_run_record(
    *,
    run_id: str,
    plan_doc: Mapping[str, Any],
    outcome: Outcome,
    started: float,
    writes_finished: float | None,
    finished: float,
    stats: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    checks: Sequence[Mapping[str, Any]],
    trim: Mapping[str, Any] | None,
    rejects: Mapping[str, Any],
    error: str | None = None,
    state_location: str | None = None,
) -> dict[str, Any]:
    """The JSON run record of one apply."""
    ingest_s = max(0.0, (writes_finished or finished) - started)
    rows = int(stats.get("rows_acked", 0))
    size = int(stats.get("bytes_acked", 0))
    retries = Counter(str(e.get("cause")) for e in events if e["event"] == "retry")
    actions = _throttle_actions(events)
    recall = next((c for c in checks if c["key"] == "recall"), None)
    return {
        "record_version": RECORD_VERSION,
        "run_id": run_id,
        "outcome": outcome,
        "error": error,
        "plan": dict(plan_doc["plan"]),
        "target": dict(plan_doc["target"]),
        "plan_summary_line": plan_doc["summary_line"],
        "started": _iso(started),
        "finished": _iso(finished),
        "duration_s": round(finished - started, 3),
        "workload": {
            "files_planned": plan_doc["totals"]["files_to_write"],
            "files_written": int(stats.get("files_done", 0)),
            "files_skipped": plan_doc["totals"]["skipped"],
            "rows": rows,
            "bytes": size,
            "requests": int(stats.get("requests", 0)),
        },
        "ingest": {
            "duration_s": round(ingest_s, 3),
            "rows_per_s": round(rows / ingest_s, 1) if ingest_s > 0 else 0.0,
            "mb_per_s": round(size / 1e6 / ingest_s, 3) if ingest_s > 0 else 0.0,
            "resends": int(stats.get("resends", 0)),
            "duplicate_sequences": int(stats.get("duplicate_sequences", 0)),
            "splits_413": int(stats.get("splits", 0)),
            "last_acked_wal_sequence": stats.get("max_acked_seq") or None,
        },
        "throttle": {
            "pauses": len(actions),
            "paused_s": round(sum((a["end"] or finished) - a["start"] for a in actions), 3),
            "actions": [
                {
                    "start": _iso(a["start"]),
                    "end": _iso(a["end"]),
                    "lag_before": a["lag_before"],
                    "lag_after": a["lag_after"],
                }
                for a in actions
            ],
        },
        "retries": {"total": sum(retries.values()), "by_cause": dict(sorted(retries.items()))},
        "rejects": dict(rejects),
        "verification": [dict(c) for c in checks],
        "recall": None
        if recall is None
        else {
            "passed": recall["passed"],
            "avg_recall": recall["evidence"].get("avg_recall"),
            "min_avg_recall": recall["evidence"].get("min_avg_recall"),
            "evaluated": recall["evidence"].get("evaluated"),
            "advice": recall["advice"],
            "tuning": recall["evidence"].get("tuning"),
        },
        "wal_trim": dict(trim) if trim is not None else None,
        "charts": _charts(events, started),
        "state_location": state_location,
    }


# --- rendering -----------------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _mermaid_series(points: Sequence[Sequence[float]]) -> dict[str, str]:
    xs = [f"{p[0]:g}" for p in points]
    ys = [f"{p[1]:g}" for p in points]
    top = max([float(p[1]) for p in points] + [1.0])
    return {"x": ", ".join(xs), "y": ", ".join(ys), "max": f"{top * 1.1:.0f}"}


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = _cell
    env.filters["count"] = lambda n: format_count(int(n))
    env.filters["bytes"] = lambda n: format_bytes(int(n))
    env.filters["series"] = _mermaid_series
    return env


def render_summary(record: Mapping[str, Any]) -> str:
    """The markdown summary of a run record (the stored template, sandboxed)."""
    template_text = (
        importlib.resources.files("elax_plan.report")
        .joinpath("templates/summary.md.j2")
        .read_text(encoding="utf-8")
    )
    text = _environment().from_string(template_text).render(r=record)
    if len(text) > SUMMARY_LIMIT:
        text = text[: SUMMARY_LIMIT - 100] + "\n\n… (truncated to stay under 60,000 characters)\n"
    return text
