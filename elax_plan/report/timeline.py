"""The run over time, for the summary: its phases, its pauses and its charts' buckets.

Pure: events in (each with ``ts``), JSON-ready figures out. One time base for all
of it: seconds since the writes started (the ``run_started`` event).

- ``phases``: plan, write, delivery proof, re-sends, indexing after the writes, the
  wait for the index, each check, and the rest (trim, summary), with durations —
  each phase lasts from its event to the next phase's.
- ``throttling``: how many pauses, the paused share of the write time, the median
  and longest pause, and each pause as offsets (``t+0.08 s → t+0.48 s``).
- ``charts``: the write window cut into at most ``CHART_BUCKETS`` even buckets
  that cover it exactly (never shorter than ``MIN_BUCKET_S``): per bucket the highest WAL lag the
  throttle acted on (its estimate, at polls and pauses: so a pause's peak is never
  dropped), the mean rows/s (from the acknowledged rows, interpolated at the bucket
  edges) and the share of the bucket spent paused; with the two thresholds. Fewer
  than ``MIN_BUCKETS`` buckets make no chart (the summary says it in a sentence).
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

CHART_BUCKETS = 30
MIN_BUCKETS = 3
MIN_BUCKET_S = 0.05

Events = Sequence[Mapping[str, Any]]

_WRITES_END = ("writes_finished", "writes_stopped")


def writes_window(events: Events, started: float) -> tuple[float, float]:
    """(start, end) of the first pass of writes: ``run_started`` to its end event."""
    t0 = next((e["ts"] for e in events if e["event"] == "run_started"), started)
    t1 = next((e["ts"] for e in events if e["event"] in _WRITES_END), None)
    if t1 is None:  # stopped by an error: the last sample the writes left
        t1 = max([t0] + [e["ts"] for e in events if e["event"] == "lag"])
    return t0, max(t0, t1)


def _label(e: Mapping[str, Any]) -> str | None:
    kind = e["event"]
    if kind == "plan_started":
        return "plan"
    if kind == "run_started":
        return "write"
    if kind in _WRITES_END:
        return "delivery proof"
    if kind == "resend":
        return "re-send lost rows"
    if kind == "compaction_started" and e.get("trigger") == "after_writes":
        return "index after the writes"
    if kind == "check_started":
        return "wait for the index" if e.get("kind") == "wait_for_index" else f"check {e['key']}"
    return None


def phases(events: Events, finished: float) -> list[dict[str, Any]]:
    """The run's phases in order, each ``{"phase", "start_s", "duration_s"}``."""
    t0, _ = writes_window(events, events[0]["ts"] if events else finished)
    marks = [(e["ts"], label) for e in events if (label := _label(e)) is not None]
    # The checks' verdicts are recorded together when the last check ends.
    done = next((e["ts"] for e in events if e["event"] == "check"), None)
    if done is not None:
        marks.append((done, "trim and summary"))
    if not marks:
        return []
    marks.sort(key=lambda m: m[0])
    out = []
    for (ts, label), nxt in zip(marks, [*marks[1:], (finished, "")], strict=True):
        out.append(
            {
                "phase": label,
                "start_s": round(ts - t0, 3),
                "duration_s": round(max(0.0, nxt[0] - ts), 3),
            }
        )
    return out


def pauses(events: Events) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """Each throttle pause: (its pause event, its resume event or None)."""
    out: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = []
    for e in events:
        if e["event"] == "throttle_pause":
            out.append((e, None))
        elif e["event"] == "throttle_resume" and out and out[-1][1] is None:
            out[-1] = (out[-1][0], e)
    return out


def throttling(events: Events, started: float, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The pauses in one sentence's figures, and each as offsets from the writes' start."""
    t0, t1 = writes_window(events, started)
    found = pauses(events)
    lengths = [(r["ts"] if r else t1) - p["ts"] for p, r in found]
    write_s = t1 - t0
    return {
        "pauses": len(found),
        "paused_s": round(sum(lengths), 3),
        "write_s": round(write_s, 3),
        "paused_share": round(sum(lengths) / write_s, 4) if write_s > 0 else 0.0,
        "median_pause_s": round(statistics.median(lengths), 3) if lengths else 0.0,
        "longest_pause_s": round(max(lengths), 3) if lengths else 0.0,
        "max_wal_lag": settings.get("max_wal_lag"),
        "resume_wal_lag": settings.get("resume_wal_lag"),
        "actions": [
            {
                "start_s": round(p["ts"] - t0, 3),
                "end_s": round(r["ts"] - t0, 3) if r else None,
                "paused_s": round(length, 3),
                # The lag the throttle acted on: the polled lag plus the writes acknowledged
                # since that poll and in flight (the polled lag alone is often still 0).
                "lag_before": p.get("estimated_lag", p.get("lag")),
                "lag_after": r.get("lag") if r else None,
            }
            for (p, r), length in zip(found, lengths, strict=True)
        ],
    }


def charts(events: Events, started: float, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The write window in even buckets: lag (max), rows/s (mean), % paused; thresholds."""
    t0, t1 = writes_window(events, started)
    span = t1 - t0
    n = min(CHART_BUCKETS, math.floor(span / MIN_BUCKET_S + 1e-4))
    width = span / n if n else 0.0
    edges = [t0 + i * width for i in range(n)] + [t1] if n else []
    return {
        "bucket_s": round(width, 4),
        "buckets": n,
        "lag": _lag_buckets(events, edges),
        "throughput": _rate_buckets(events, edges, t1),
        "paused_pct": _paused_buckets(events, edges, t1),
        "max_wal_lag": settings.get("max_wal_lag"),
        "resume_wal_lag": settings.get("resume_wal_lag"),
    }


def _lag_buckets(events: Events, edges: list[float]) -> list[int]:
    """Per bucket the highest estimated lag seen in it (polls, pauses and the readings that
    resumed writes); a bucket with no sample keeps the last one before it (the lag stayed
    until the next reading)."""
    samples = sorted(
        (e["ts"], int(e.get("estimated_lag", e.get("lag", 0))))
        for e in events
        if e["event"] in ("lag", "throttle_pause", "throttle_resume")
    )
    out: list[int] = []
    last = 0
    i = 0
    for b in range(len(edges) - 1):
        high: int | None = None
        while i < len(samples) and samples[i][0] < edges[b + 1]:
            if samples[i][0] >= edges[b]:
                high = samples[i][1] if high is None else max(high, samples[i][1])
            last = samples[i][1]
            i += 1
        out.append(high if high is not None else last)
    return out


def _rate_buckets(events: Events, edges: list[float], t1: float) -> list[float]:
    """Mean rows/s per bucket, from the acknowledged rows interpolated at its edges."""
    if len(edges) < 2:
        return []
    points = [(edges[0], 0.0)]
    points += [
        (e["ts"], float(e["rows_acked"]))
        for e in events
        if e["event"] == "lag" and "rows_acked" in e and edges[0] <= e["ts"] <= t1
    ]
    end = next((e for e in events if e["event"] in _WRITES_END), None)
    if end is not None and "rows" in end:
        points.append((end["ts"], float(end["rows"])))
    points.sort()
    times = [p[0] for p in points]

    def rows_at(t: float) -> float:
        j = bisect.bisect_right(times, t)
        if j == 0:
            return points[0][1]
        if j == len(points):
            return points[-1][1]
        (ta, ra), (tb, rb) = points[j - 1], points[j]
        return ra + (rb - ra) * (t - ta) / (tb - ta) if tb > ta else rb

    width = edges[1] - edges[0]
    return [
        round(max(0.0, rows_at(edges[b + 1]) - rows_at(edges[b])) / width)
        for b in range(len(edges) - 1)
    ]


def _paused_buckets(events: Events, edges: list[float], t1: float) -> list[float]:
    """Per bucket the share of it (%) the throttle held the writes."""
    spans = [(p["ts"], r["ts"] if r else t1) for p, r in pauses(events)]
    out = []
    for b in range(len(edges) - 1):
        lo, hi = edges[b], edges[b + 1]
        held = sum(max(0.0, min(hi, e) - max(lo, s)) for s, e in spans)
        out.append(round(min(100.0, 100.0 * held / (hi - lo)), 1))
    return out
