"""The run record (``runs/<run_id>/summary.json``) and its markdown rendering.

Pure. ``build_run_record`` turns what one apply saw — the execution plan JSON,
the pipeline numbers, the event stream, the verification verdicts (the comparison with a
baseline's figures in a section of their own), the WAL's
size at the start and end of the run and the WAL trim — into one JSON document (described by ``schemas/run-record.schema.json``);
``render_summary`` renders only that document with a sandboxed jinja2
template (strict undefined), so a summary can always be rendered again later
(``elax-plan summary``) from the stored record.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from elax_plan.execution_plan import format_bytes, format_count
from elax_plan.report import timeline
from elax_plan.report.plan_render import shown_path

RECORD_VERSION = "1.5"  # 1.1: indexer; 1.2: wal (size and growth); 1.3: delivery mode;
# 1.4: comparison; 1.5: operator, phases, throttle figures, charts in even buckets
SUMMARY_LIMIT = 60_000

Outcome = str  # "succeeded" | "verification_failed" | "failed" | "interrupted"
WalSize = Mapping[str, int]  # {"objects": n, "bytes": n}
WalSizes = tuple[str, WalSize | None, WalSize | None]  # namespace, at the start, at the end


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _indexer(plan_doc: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Who indexed, as the plan said, and each run of the command apply drove."""
    indexer = plan_doc.get("indexer") or {}
    return {
        "mode": indexer.get("mode", "external"),
        "detail": indexer.get("detail", ""),
        "compactions": [
            {
                "at": _iso(e["ts"]),
                "trigger": e["trigger"],
                "duration_s": e["duration_s"],
                "exit_code": e["exit_code"],
                "stdout": e["stdout"],
                "stderr": e["stderr"],
            }
            for e in events
            if e["event"] == "compaction"
        ],
    }


def _delivery(plan_doc: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The delivery proofs of the run (``verify.delivery`` mode; how many, and how many ran
    while it was still writing), every acknowledged write the WAL lost, each one found during
    the writes, and each pass that wrote those rows again."""
    setting = plan_doc.get("delivery") or {"mode": "full", "sample_every": 1}
    proofs = [e for e in events if e["event"] == "delivery_proof"]
    return {
        "mode": setting["mode"],
        "sample_every": setting["sample_every"],
        "proofs": len(proofs),
        "proofs_during_writes": sum(1 for e in proofs if e.get("phase") == "writes"),
        "found_during_writes": [
            {"file": e["file"], "wal_sequence": e["wal_sequence"]}
            for e in events
            if e["event"] == "overwritten_found"
        ],
        "overwritten": [
            {
                "file": e["file"],
                "wal_sequence": e["wal_sequence"],
                "from": dict(e["from"]),
                "reason": e["reason"],
            }
            for e in events
            if e["event"] == "overwritten"
        ]
        + [
            {
                "file": f["file"],
                "wal_sequence": e["wal_sequence"],
                "from": dict(f["from"]),
                "reason": "a later write was acknowledged with the same wal_sequence",
            }
            for e in events
            if e["event"] == "overwritten_after_checkpoint"
            for f in e["files"]
        ],
        "resent": [
            {"round": e["round"], "files": list(e["files"])}
            for e in events
            if e["event"] == "resend"
        ],
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
    duplicates: Mapping[str, Any] | None = None,
    wal: WalSizes | None = None,
    operator: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON run record of one apply.

    ``operator``: who ran it and from what (``apply.operator``); the plan file, its digest
    and the runs before this one are added from the plan and the events.

    ``wal``: the namespace and its WAL's ``{"objects", "bytes"}`` at the start and the end
    of the run (each ``None`` when the listing failed).

    ``duplicates``: ids read more than once in this run — ``rows`` (rows whose id an earlier
    row had), ``ids``, ``location`` (the run's duplicates.ndjson) and ``examples`` (the first
    few, as written there).
    """
    retries = Counter(str(e.get("cause")) for e in events if e["event"] == "retry")
    settings = plan_doc.get("settings") or {}
    record = {
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
        "workload": _workload(plan_doc, stats),
        "operator": _operator(operator, plan_doc, events),
        "phases": timeline.phases(events, finished),
        "ingest": _ingest(stats, max(0.0, (writes_finished or finished) - started)),
        "throttle": timeline.throttling(events, started, settings),
        "indexer": _indexer(plan_doc, events),
        "delivery": _delivery(plan_doc, events),
        "retries": {"total": sum(retries.values()), "by_cause": dict(sorted(retries.items()))},
        "rejects": dict(rejects),
        "verification": [_verdict(c) for c in checks],
        "recall": _recall(checks),
        "comparison": _comparison(checks),
        "wal": _wal(wal),
        "wal_trim": dict(trim) if trim is not None else None,
        "charts": timeline.charts(events, started, settings),
        "state_location": state_location,
    }
    if duplicates is not None:
        record["duplicates"] = dict(duplicates)
    return record


def _operator(
    facts: Mapping[str, Any] | None,
    plan_doc: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Who ran the run and from what, and the runs before it."""
    started = next((e for e in events if e["event"] == "run_started"), {})
    plan = plan_doc["plan"]
    return {
        **dict(facts or {}),
        "plan_file": plan["file"],
        "plan_base": plan.get("base"),
        "plan_digest": plan["digest"],
        "resumed_from": started.get("resumed_from_run"),
        "previous_run": started.get("previous_run"),
    }


def _wal(wal: WalSizes | None) -> dict[str, Any] | None:
    """The WAL's size at the start and end of the run and what the run added (no released
    elacsym deletes WAL objects, and every node replays all of them when it loads the
    namespace: its growth is what an operator plans space and restart time for)."""
    if wal is None:
        return None
    namespace, start, end = wal
    growth = (
        {k: int(end[k]) - int(start[k]) for k in ("objects", "bytes")}
        if start is not None and end is not None
        else None
    )
    return {
        "namespace": namespace,
        "start": dict(start) if start is not None else None,
        "end": dict(end) if end is not None else None,
        "growth": growth,
    }


def _workload(plan_doc: Mapping[str, Any], stats: Mapping[str, Any]) -> dict[str, Any]:
    """What the plan asked for next to what the pipeline acknowledged."""
    return {
        "files_planned": plan_doc["totals"]["files_to_write"],
        "rows_planned_estimate": plan_doc["totals"]["rows"],
        "files_written": int(stats.get("files_done", 0)),
        "files_skipped": plan_doc["totals"]["skipped"],
        "rows": int(stats.get("rows_acked", 0)),
        "bytes": int(stats.get("bytes_acked", 0)),
        "requests": int(stats.get("requests", 0)),
        "rows_read": int(stats.get("rows_read", 0)),
        "rows_rejected": int(stats.get("rows_rejected", 0)),
        "unique_ids": int(stats.get("unique_ids", 0)),
        "duplicate_rows": int(stats.get("duplicate_rows", 0)),
    }


def _ingest(stats: Mapping[str, Any], ingest_s: float) -> dict[str, Any]:
    """The writes' rates over ``ingest_s`` (start to the end of the writes) and their repairs."""
    rows = int(stats.get("rows_acked", 0))
    size = int(stats.get("bytes_acked", 0))
    return {
        "duration_s": round(ingest_s, 3),
        "rows_per_s": round(rows / ingest_s, 1) if ingest_s > 0 else 0.0,
        "mib_per_s": round(size / 2**20 / ingest_s, 3) if ingest_s > 0 else 0.0,
        "resends": int(stats.get("resends", 0)),
        "duplicate_sequences": int(stats.get("duplicate_sequences", 0)),
        "splits_413": int(stats.get("splits", 0)),
        "last_acked_wal_sequence": stats.get("max_acked_seq") or None,
    }


def _recall(checks: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The recall gate's verdict and evidence, or None when the run had no recall check."""
    recall = next((c for c in checks if c["key"] == "recall"), None)
    if recall is None:
        return None
    return {
        "passed": recall["passed"],
        "avg_recall": recall["evidence"].get("avg_recall"),
        "min_avg_recall": recall["evidence"].get("min_avg_recall"),
        "evaluated": recall["evidence"].get("evaluated"),
        "advice": recall["advice"],
        "tuning": recall["evidence"].get("tuning"),
    }


COMPARISON_IN_VERDICT = ("baseline", "workload")


def _verdict(check: Mapping[str, Any]) -> dict[str, Any]:
    """A check as the record lists it; the comparison's figures are in ``comparison`` only."""
    if check["key"] != "compare":
        return dict(check)
    evidence = check.get("evidence") or {}
    return {
        **check,
        "evidence": {k: evidence[k] for k in COMPARISON_IN_VERDICT if k in evidence},
    }


def _comparison(checks: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The comparison with the baseline (its verdict and every figure), or None without one."""
    check = next((c for c in checks if c["key"] == "compare"), None)
    if check is None:
        return None
    evidence = dict(check.get("evidence") or {})
    return {
        "passed": check["passed"],
        "incomplete": bool(check.get("incomplete")),
        "detail": check["detail"],
        "advice": check["advice"],
        "baseline": evidence.pop("baseline", None),
        "workload": evidence.pop("workload", None),
        "figures": evidence or None,  # None: it could not run
    }


def _overlap_chart(figures: Mapping[str, Any]) -> dict[str, str]:
    """The overlap distribution as a mermaid bar chart's axis and values."""
    buckets = figures["distribution"]
    top = max([int(b["queries"]) for b in buckets] + [1])
    return {
        "x": ", ".join(f'"{b["bucket"]}"' for b in buckets),
        "y": ", ".join(str(int(b["queries"])) for b in buckets),
        "max": str(math.ceil(top * 1.1)),
    }


# --- rendering -----------------------------------------------------------------------------


def _cell(text: Any) -> str:
    """Plain text for a table cell or a line: names and server messages are not markup.

    ``<`` becomes ``&lt;`` so that a query named ``<details>`` stays text, not HTML.
    """
    return _code(text).replace("<", "&lt;")


def _code(text: Any) -> str:
    """Text for inside a code span in a table: a pipe would end the cell even there."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _plain_number(value: float) -> str:
    """``value`` as mermaid reads numbers: digits and one decimal point, never ``1e+06``."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _mermaid_series(points: Sequence[Sequence[float]]) -> dict[str, str]:
    xs = [_plain_number(p[0]) for p in points]
    ys = [_plain_number(p[1]) for p in points]
    top = max([float(p[1]) for p in points] + [1.0])
    return {"x": ", ".join(xs), "y": ", ".join(ys), "max": f"{math.ceil(top * 1.1)}"}


def _seconds(value: float) -> str:
    """A duration for people: ``0.08 s``, ``14.3 s``, ``1,204 s``."""
    v = float(value)
    if v < 10:
        return f"{v:.2f} s"
    return f"{v:.1f} s" if v < 100 else f"{v:,.0f} s"


def _place(where: Mapping[str, Any]) -> str:
    """``{"file", "line"}`` as ``FILE:LINE``, ``{"file", "row"}`` as ``FILE: row N``."""
    if where.get("line") is not None:
        return f"{where['file']}:{where['line']}"
    return f"{where['file']}: row {where.get('row')}"


def _resume_point(point: Mapping[str, Any]) -> str:
    """A resume point (0-based ``line`` of NDJSON, ``row`` of Parquet) as a person counts."""
    if point.get("line") is not None:
        return f"line {int(point['line']) + 1:,}"
    if point.get("row") is not None:
        return f"row {int(point['row']) + 1:,}"
    return "the start"


def _json(value: Any, indent: int | None = None) -> str:
    # Not jinja's tojson: that escapes <, >, & and ' for HTML, which a markdown code block
    # would show as \u003c…; keys sorted so a rendering is stable.
    return json.dumps(value, indent=indent, sort_keys=True, ensure_ascii=False)


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = _cell
    env.filters["code"] = _code
    env.filters["count"] = lambda n: format_count(int(n))
    env.filters["bytes"] = lambda n: format_bytes(int(n))
    env.filters["series"] = _mermaid_series
    env.filters["number"] = _plain_number
    env.filters["numbers"] = lambda values: ", ".join(_plain_number(float(v)) for v in values)
    env.filters["top"] = lambda values: math.ceil(max([float(v) for v in values] + [1.0]) * 1.1)
    env.filters["seconds"] = _seconds
    env.filters["shown"] = shown_path
    env.filters["json"] = _json
    env.filters["place"] = _place
    env.filters["resume_point"] = _resume_point
    env.filters["overlap_chart"] = _overlap_chart
    return env


def render_summary(record: Mapping[str, Any]) -> str:
    """The markdown summary of a run record (the stored template, sandboxed)."""
    template_text = (
        importlib.resources.files("elax_plan.report")
        .joinpath("templates/summary.md.j2")
        .read_text(encoding="utf-8")
    )
    text = _environment().from_string(template_text).render(r=record)
    return _fit(text) if len(text) > SUMMARY_LIMIT else text


def _fit(text: str) -> str:
    """``text`` cut to stay under SUMMARY_LIMIT, still valid markdown.

    A last resort (the template folds long tables): cut at a line end, then close an
    open code fence and ``<details>`` so the rest of the page does not render as code.
    """
    kept = text[: text.rfind("\n", 0, SUMMARY_LIMIT - 300) + 1]
    tail = ""
    fences = [m.start() for m in re.finditer(r"^```", kept, re.MULTILINE)]
    if len(fences) % 2:
        if kept.startswith("```mermaid", fences[-1]):
            kept = kept[: fences[-1]]  # half a chart would not parse: leave it out
        else:
            tail += "```\n"
    if kept.count("<details>") > kept.count("</details>"):
        tail += "\n</details>\n"
    full = f"{len(text):,}"
    return (
        f"{kept}{tail}\n… (cut from {full} characters to stay under 60,000; the whole run "
        "record is in summary.json)\n"
    )
