"""The throttle's decisions on scripted router readings and a manual clock."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from elax_plan.apply.throttle import IndexerStalled, RouterReading, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Router:
    """Readings a test scripts: each poll returns the current one and advances time."""

    def __init__(self, clock: Clock, readings: list[tuple[int, int]]) -> None:
        self.clock = clock
        self.readings = readings
        self.polls = 0

    def __call__(self) -> RouterReading:
        hw, idx = self.readings[min(self.polls, len(self.readings) - 1)]
        self.polls += 1
        self.clock.now += 1.0
        return RouterReading(hw, idx)


def make(
    readings: list[tuple[int, int]], **kw: Any
) -> tuple[Throttle, list[tuple[str, dict[str, Any]]]]:
    clock = Clock()
    events: list[tuple[str, dict[str, Any]]] = []

    class NoWaitEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            return self.is_set()

    throttle = Throttle(
        Router(clock, readings),
        max_wal_lag=kw.get("max_wal_lag", 4),
        resume_wal_lag=kw.get("resume_wal_lag", 1),
        poll_interval=kw.get("poll_interval", 10.0),
        stall_timeout=kw.get("stall_timeout", 5.0),
        stop=NoWaitEvent(),
        on_event=lambda kind, data: events.append((kind, data)),
        clock=clock,
        compact=kw.get("compact"),
        pause_on_lag=kw.get("pause_on_lag", True),
    )
    return throttle, events


def test_own_writes_count_between_polls() -> None:
    """Acks since the last poll and writes in flight count toward the lag."""
    throttle, events = make([(10, 10), (10, 10), (14, 14)])
    for _ in range(3):
        throttle.before_submit(in_flight=0)
        throttle.on_ack()
    # lag 0 polled + 3 acks + 1 in flight = 4: one more would pass max_wal_lag 4
    throttle.before_submit(in_flight=0)
    assert throttle.pauses == 0
    throttle.on_ack()
    throttle.before_submit(in_flight=0)
    assert throttle.pauses == 1
    kinds = [k for k, _ in events]
    assert kinds.index("throttle_pause") < kinds.index("throttle_resume")


def test_pause_until_resume_lag_then_resume() -> None:
    """Paused at lag above max; resumes only once a reading is ≤ resume_wal_lag."""
    throttle, events = make([(20, 10), (20, 15), (20, 19), (20, 20)], max_wal_lag=4)
    throttle.before_submit(in_flight=0)
    pause = [d for k, d in events if k == "throttle_pause"]
    resume = [d for k, d in events if k == "throttle_resume"]
    assert pause[0]["lag"] == 10
    assert resume[0]["lag"] == 1
    lags = [d["lag"] for k, d in events if k == "lag"]
    assert lags == [10, 5, 1]


def test_stall_raises_with_the_cause() -> None:
    """No indexed_wal progress while paused for stall_timeout ends with IndexerStalled."""
    throttle, _ = make([(20, 10)], stall_timeout=3.0)
    with pytest.raises(IndexerStalled, match="no indexer is running"):
        throttle.before_submit(in_flight=0)


def test_progress_resets_the_stall_clock() -> None:
    """Slow but steady indexing is not a stall."""
    readings = [(40, 10 + i) for i in range(0, 30)] + [(40, 40)]
    throttle, _ = make(readings, stall_timeout=2.0)
    throttle.before_submit(in_flight=0)
    assert throttle.pauses == 1 and not throttle.paused


def test_command_mode_runs_the_indexer_only_with_no_write_in_flight() -> None:
    """indexer.mode command: at the lag limit the pipeline is told to let its writes land
    (wants_quiet) while any is in flight; then one pause runs the indexer once and resumes."""
    ran: list[str] = []
    # The reading after the compaction shows the index caught up.
    throttle, events = make([(10, 10), (14, 10), (14, 14)], compact=ran.append)
    throttle.before_submit(in_flight=0)
    for _ in range(4):
        throttle.on_ack()
    assert throttle.wants_quiet(in_flight=1)  # 0 polled + 4 acks + 1 in flight + 1 > 4
    assert not throttle.wants_quiet(in_flight=0)  # nothing to wait for: decide now
    assert ran == []
    throttle.before_submit(in_flight=0)
    assert ran == ["lag"]
    assert throttle.pauses == 1 and not throttle.paused
    assert [k for k, _ in events].count("throttle_resume") == 1


def test_command_mode_stall_says_the_command_did_not_help() -> None:
    ran: list[str] = []
    throttle, _ = make([(20, 10)], compact=ran.append, stall_timeout=3.0)
    with pytest.raises(IndexerStalled, match="The indexer command ran"):
        throttle.before_submit(in_flight=0)
    assert ran == ["lag"]  # once per pause, not once per poll


def test_command_mode_runs_again_while_each_run_makes_progress() -> None:
    """A compaction that indexes only part of the lag is run again in the same pause, as long
    as the last run moved indexed_wal; writes resume at resume_wal_lag."""
    ran: list[str] = []
    # Each poll after a run shows 3 more batches indexed: lag 10 → 7 → 4 → 1.
    throttle, events = make(
        [(20, 10), (20, 13), (20, 16), (20, 19)], compact=ran.append, stall_timeout=100.0
    )
    throttle.before_submit(in_flight=0)
    assert ran == ["lag"] * 3
    assert throttle.pauses == 1 and not throttle.paused
    assert [d["lag"] for k, d in events if k == "throttle_resume"] == [1]


def test_external_mode_stall_names_command_mode() -> None:
    throttle, _ = make([(20, 10)], stall_timeout=3.0)
    with pytest.raises(IndexerStalled, match=r"indexer\.mode: command"):
        throttle.before_submit(in_flight=0)


def test_mode_none_samples_the_lag_and_never_pauses() -> None:
    throttle, events = make([(50, 0)], pause_on_lag=False)
    for _ in range(20):
        throttle.before_submit(in_flight=1)
        throttle.on_ack()
    assert throttle.pauses == 0
    assert next(d["lag"] for k, d in events if k == "lag") == 50


def test_a_pause_reads_the_router_soon_then_at_the_configured_pace() -> None:
    """While paused the router is read again after 50 ms, then at doubling waits up to
    poll_interval: a quick indexer ends the pause at once, a slow one is read at its pace."""
    waits: list[float] = []

    class Recording(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0.0)
            return False

    clock = Clock()
    readings = [(20, 10)] * 7 + [(20, 20)]
    throttle = Throttle(
        Router(clock, readings),
        max_wal_lag=4,
        resume_wal_lag=1,
        poll_interval=1.0,
        stall_timeout=100.0,
        stop=Recording(),
        on_event=lambda *_: None,
        clock=clock,
    )
    throttle.before_submit(in_flight=0)
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert not throttle.paused
