"""The throttle: hold new writes while the indexer is behind, as the runbook's operator would.

Owns the pause/resume decision on WAL lag (``wal_highwater − indexed_wal`` read
from ``router.json``) and the stall verdict. Between two polls it counts the
writes this run had acknowledged and those still in flight, so the lag can
never pass ``max_wal_lag`` through our own writes however fast they go; after
a pause, writes resume once a fresh reading is at most ``resume_wal_lag``.
Paused with no ``indexed_wal`` progress for ``stall_timeout`` → ``IndexerStalled``.

With ``compact`` (``indexer.mode: command``) a pause runs the indexer itself, once no
write is in flight (``wants_quiet`` tells the pipeline to let them land first: the
command takes no lock, hazard H2), and again while each run moved ``indexed_wal`` and
the lag is still above ``resume_wal_lag`` (a run may index less than the whole lag, or
another writer adds to it); a run that moved nothing is not repeated in that pause. With ``pause_on_lag=False`` (``indexer.mode: none``) it
only samples the lag.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elax_plan.errors import IndexerStalled
from elax_plan.retry import Interrupted

FIRST_WAIT = 0.05
"""Seconds before the first re-reading of the router in a pause (then doubling up to
``poll_interval``); the same backoff serves the wait for the index."""


@dataclass(frozen=True, slots=True)
class RouterReading:
    wal_highwater: int
    indexed_wal: int

    @property
    def lag(self) -> int:
        return max(0, self.wal_highwater - self.indexed_wal)


class Throttle:
    """Call ``before_submit`` before each new write and ``on_ack`` after each acknowledgement."""

    def __init__(
        self,
        read_router: Callable[[], RouterReading],
        *,
        max_wal_lag: int,
        resume_wal_lag: int,
        poll_interval: float,
        stall_timeout: float,
        stop: threading.Event,
        on_event: Callable[[str, dict[str, Any]], None],
        clock: Callable[[], float] = time.monotonic,
        compact: Callable[[str], object] | None = None,
        pause_on_lag: bool = True,
    ) -> None:
        self.read_router = read_router
        self.max_wal_lag = max_wal_lag
        self.resume_wal_lag = resume_wal_lag
        self.poll_interval = poll_interval
        self.stall_timeout = stall_timeout
        self.stop = stop
        self.on_event = on_event
        self.clock = clock
        self.compact = compact
        self.pause_on_lag = pause_on_lag
        self._compact_again = False  # in the current pause: the last run made progress
        self._lock = threading.Lock()
        self._acks = 0
        self._acks_at_poll = 0
        self._last: RouterReading | None = None
        self._last_poll = float("-inf")
        self.paused = False
        self._paused_since = 0.0
        self._progress_at = 0.0
        self.paused_seconds = 0.0
        self.pauses = 0
        self.max_seen_lag = 0
        self._in_flight = 0  # writes in flight at the last before_submit
        self._wait = FIRST_WAIT  # the next wait while paused (see _next_wait)

    @property
    def last_reading(self) -> RouterReading | None:
        return self._last

    @property
    def acted_lag(self) -> int:
        """The lag the throttle acts on: the last reading plus our writes acknowledged since
        and in flight (at the last decision)."""
        return self.estimated_lag(self._in_flight) if self._last is not None else 0

    def on_ack(self) -> None:
        with self._lock:
            self._acks += 1

    def poll(self) -> RouterReading:
        """Read the router now and record a lag sample."""
        with self._lock:
            before = self._acks
        reading = self.read_router()
        now = self.clock()
        with self._lock:
            # Acks that landed during the read may or may not be in it: count them (safe side).
            self._acks_at_poll = before
            previous = self._last
            self._last = reading
            self._last_poll = now
        if previous is None or reading.indexed_wal != previous.indexed_wal:
            self._progress_at = now
        self.max_seen_lag = max(self.max_seen_lag, reading.lag)
        self.on_event(
            "lag",
            {
                "wal_highwater": reading.wal_highwater,
                "indexed_wal": reading.indexed_wal,
                "lag": reading.lag,
                "estimated_lag": self.acted_lag,
                "paused": self.paused,
            },
        )
        return reading

    def estimated_lag(self, in_flight: int) -> int:
        """The lag if every write in flight lands now, counting acks since the last poll."""
        reading = self._last
        assert reading is not None
        with self._lock:
            since = self._acks - self._acks_at_poll
        return reading.lag + since + in_flight

    def wants_quiet(self, in_flight: int) -> bool:
        """Whether the writes in flight must land before the next one is decided: the
        throttle is about to run the indexer, which must never overlap a write."""
        if self.compact is None or not in_flight or self._last is None:
            return False
        return self.paused or self.estimated_lag(in_flight) + 1 > self.max_wal_lag

    def before_submit(self, in_flight: int) -> None:
        """Return when one more write may go out; blocks while paused."""
        self._in_flight = in_flight
        while True:
            if self.stop.is_set():
                raise Interrupted()
            now = self.clock()
            if self._last is None or now - self._last_poll >= self.poll_interval:
                self.poll()
            assert self._last is not None
            if not self.pause_on_lag:
                return
            if not self.paused:
                if self.estimated_lag(in_flight) + 1 <= self.max_wal_lag:
                    return
                self._pause(in_flight)
                continue
            if self._last.lag <= self.resume_wal_lag and self.estimated_lag(in_flight) < (
                self.max_wal_lag
            ):
                self._resume()
                continue
            if self.compact is not None and not in_flight and self._compact_again:
                before = self._last.indexed_wal
                self.compact("lag")
                self._compact_again = self.poll().indexed_wal > before
                continue
            if now - self._progress_at >= self.stall_timeout:
                raise self._stalled()
            if self.stop.wait(self._next_wait()):
                raise Interrupted()
            self.poll()

    def _stalled(self) -> IndexerStalled:
        assert self._last is not None
        summary = (
            f"Writes were paused on WAL lag for {self.stall_timeout:g}s and indexed_wal "
            f"did not move (wal_highwater {self._last.wal_highwater}, indexed_wal "
            f"{self._last.indexed_wal}, lag {self._last.lag})."
        )
        if self.compact is not None:
            return IndexerStalled(
                summary,
                detail="The indexer command ran and indexed_wal still did not reach the "
                "writes: it may index another data root than target.store, or another "
                "writer keeps the lag up.",
                hint="Check indexer.command against the node's data root, then run "
                "`elax-plan apply` again: the run resumes from its checkpoint.",
            )
        return IndexerStalled(
            summary,
            detail="The likely cause is that no indexer is running for this namespace "
            "(the real elacsym only indexes when `elax-cli compact` runs).",
            hint="Set indexer.mode: command with indexer.command (e.g. [elax-cli, --root, "
            'DATA_ROOT, compact, "{namespace}"]) so that elax-plan runs it itself, or start '
            "the indexer; then run `elax-plan apply` again: the run resumes from its "
            "checkpoint.",
        )

    def _next_wait(self) -> float:
        """How long to wait before the next reading while paused: ``FIRST_WAIT`` at first,
        doubling up to ``poll_interval`` (an indexer that catches up at once is seen at once,
        a slow one is read at the configured pace)."""
        wait = min(self.poll_interval, self._wait)
        self._wait = wait * 2
        return wait

    def _pause(self, in_flight: int) -> None:
        assert self._last is not None
        self.paused = True
        self._compact_again = True
        self._wait = FIRST_WAIT
        self.pauses += 1
        self._paused_since = self.clock()
        self._progress_at = self._paused_since
        self.on_event(
            "throttle_pause",
            {
                "lag": self._last.lag,
                "estimated_lag": self.estimated_lag(in_flight),
                "max_wal_lag": self.max_wal_lag,
            },
        )

    def _resume(self) -> None:
        assert self._last is not None
        self.paused = False
        waited = self.clock() - self._paused_since
        self.paused_seconds += waited
        self.on_event(
            "throttle_resume",
            {
                "lag": self._last.lag,
                "resume_wal_lag": self.resume_wal_lag,
                "paused_s": round(waited, 3),
            },
        )
