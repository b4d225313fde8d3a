"""Progress lines: a rate and an ETA that hold for a throttled run, and the run's phase."""

from __future__ import annotations

from typing import Any

from elax_plan.apply.pipeline import PipelineStats
from elax_plan.apply.progress import ProgressReporter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ThrottleState:
    """What the reporter reads of the throttle."""

    def __init__(self) -> None:
        self.paused = False
        self.acted_lag = 0


def reporter(total_bytes: int) -> tuple[ProgressReporter, Clock, list[dict[str, Any]]]:
    clock = Clock()
    lines: list[dict[str, Any]] = []
    rep = ProgressReporter(
        False,
        total_rows=0,
        total_bytes=total_bytes,
        clock=clock,
        emit=lambda f: lines.append({**f, "t": clock.now}),
    )
    return rep, clock, lines


def test_a_throttled_60_second_run_has_an_eta_within_a_quarter_of_the_time_left() -> None:
    """Writes go out 0.1 s in every 0.4 s (paused 75 % of the time, as a throttled run is);
    every progress line after the first 10 s predicts the time left within 25 %."""
    chunk, total_s, cycle, burst = 64 * 1024, 60.0, 0.4, 0.1
    acks_per_cycle = 10
    cycles = round(total_s / cycle)
    rep, clock, lines = reporter(total_bytes=cycles * acks_per_cycle * chunk)
    stats, throttle = PipelineStats(), ThrottleState()
    for c in range(cycles):
        start = c * cycle
        throttle.paused = False
        for i in range(acks_per_cycle):  # a write acknowledged every 10 ms
            clock.now = start + (i + 1) * burst / acks_per_cycle
            stats.rows_acked += 100
            stats.bytes_acked += chunk
            rep(stats, throttle)  # type: ignore[arg-type]
        throttle.paused = True
        rep.on_event("throttle_pause", {})
        for i in range(6):  # the paused throttle polls the router every 50 ms
            clock.now = start + burst + (i + 1) * (cycle - burst) / 6
            rep.on_event("lag", {})
        rep.on_event("throttle_resume", {})
    judged = [line for line in lines if line["t"] >= 10.0]
    assert len(judged) >= 9
    for line in judged:
        left = total_s - line["t"]
        assert abs(line["eta_s"] - left) <= 0.25 * left + 0.5, line
        # The rate is what the run makes, pauses included (0.25 of the burst rate).
        assert abs(line["rows_per_s"] - 100 * acks_per_cycle / cycle) <= 0.1 * 2500, line


def test_no_eta_before_the_window_spans_two_seconds() -> None:
    """The first acknowledgements arrive in a burst: no rate or ETA is shown from them."""
    rep, clock, lines = reporter(total_bytes=10 * 1024 * 1024)
    stats, throttle = PipelineStats(), ThrottleState()
    for i in range(20):
        clock.now = 0.05 * (i + 1) + 5.0 * (i == 19)
        stats.rows_acked += 1000
        stats.bytes_acked += 100_000
        rep(stats, throttle)  # type: ignore[arg-type]
    [line] = lines
    assert line["t"] == 6.0 and line["eta_s"] is not None  # 5 s after the burst
    rep2, clock2, lines2 = reporter(total_bytes=10 * 1024 * 1024)
    stats2 = PipelineStats()
    for i in range(20):
        clock2.now = 4.5 + 0.05 * i  # the burst: a log line is due at 5 s, 0.5 s into it
        stats2.rows_acked += 1000
        stats2.bytes_acked += 100_000
        rep2(stats2, throttle)  # type: ignore[arg-type]
    assert lines2[0]["eta_s"] is None and lines2[0]["rows_per_s"] is None


def test_the_phase_follows_the_run_and_shows_while_paused() -> None:
    """Pauses, compactions, the delivery proof, the wait for the index and each check show
    as the phase; polls while paused write lines although no write is acknowledged."""
    rep, clock, lines = reporter(total_bytes=1024)
    stats, throttle = PipelineStats(), ThrottleState()
    throttle.acted_lag = 9
    rep(stats, throttle)  # type: ignore[arg-type]
    seen: list[str] = []

    def step(kind: str, data: dict[str, Any] | None = None) -> None:
        clock.now += 6.0
        rep.on_event(kind, data or {})
        seen.append(lines[-1]["phase"])

    throttle.paused = True
    step("throttle_pause")
    step("lag")
    step("compaction_started", {"trigger": "lag"})
    step("compaction")
    throttle.paused = False
    step("throttle_resume")
    step("writes_finished")
    step("compaction_started", {"trigger": "after_writes"})
    step("compaction")
    step("check_started", {"key": "wait_for_index", "kind": "wait_for_index"})
    step("check_started", {"key": "recall", "kind": "recall"})
    assert seen == [
        "throttled",
        "throttled",
        "compacting",
        "throttled",
        "writing",
        "proving delivery",
        "compacting",
        "waiting for the index",
        "waiting for the index",
        "verifying: recall",
    ]
    assert lines[1]["wal_lag"] == 9  # the lag the throttle acts on, not the bare reading
