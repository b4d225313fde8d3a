"""One retry loop for every transient failure: writes, the throttle's polls, verification reads,
GitHub's API.

Owns the backoff (exponential with jitter, honouring ``Retry-After`` up to a cap, and
optionally a budget for the total wait), reading ``Retry-After`` for every HTTP client
(the target's, GitHub's), and the rule of what is retried: exactly the ``ElaxError`` whose
``retryable`` is true — ``errors.py`` decides, nobody else. Waiting is on the run's stop
event, so SIGINT ends a backoff at once. It never logs; ``on_retry`` receives each retry
(cause, attempt, delay) for the run's events.
"""

from __future__ import annotations

import builtins
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from elax_plan.errors import ElaxError

T = TypeVar("T")

RETRY_AFTER_CAP_S = 300.0


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``ingest.retry``: attempts include the first try; delays in seconds.

    ``max_wait``: the most the backoffs of one ``Retrier.call`` may add up to (None: no
    budget, only ``attempts`` bounds it). A retry whose delay would overrun it is not made:
    the error is re-raised at once instead of waiting.
    """

    attempts: int = 8
    initial: float = 0.5
    max: float = 30.0
    max_wait: float | None = None

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Backoff before retry number ``attempt`` (1-based): exponential with jitter."""
        base = float(builtins.min(self.max, self.initial * (2 ** (attempt - 1))))
        jittered = base * (0.5 + rng.random() / 2)
        if retry_after is not None:
            return float(builtins.max(jittered, builtins.min(retry_after, RETRY_AFTER_CAP_S)))
        return jittered


class Interrupted(Exception):
    """The run is stopping (its stop event is set): the call or wait was not completed."""


class Retrier:
    """Calls a function until it succeeds, fails for good, or the policy's attempts run out.

    Thread-safe: the writer's threads share one.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        stop: threading.Event | None = None,
        on_retry: Callable[[dict[str, Any]], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.stop = stop or threading.Event()
        self.on_retry = on_retry
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()

    def call(self, fn: Callable[[], T], *, what: str = "") -> T:
        """``fn()``; a retryable ``ElaxError`` is retried, the last one re-raised when attempts
        (or the policy's ``max_wait``) run out. ``Interrupted`` when the stop event is set
        before or between tries."""
        attempt = 0
        waited = 0.0
        while True:
            attempt += 1
            if self.stop.is_set():
                raise Interrupted()
            try:
                return fn()
            except ElaxError as exc:
                if not exc.retryable or attempt >= self.policy.attempts:
                    raise
                retry_after = getattr(exc, "retry_after", None)
                with self._rng_lock:
                    delay = self.policy.delay(attempt, self._rng, retry_after)
                budget = self.policy.max_wait
                if budget is not None and waited + delay > budget:
                    raise
                waited += delay
                if self.on_retry is not None:
                    self.on_retry(
                        {
                            "what": what,
                            "cause": getattr(exc, "cause", "") or type(exc).__name__,
                            "attempt": attempt,
                            "delay_s": round(delay, 3),
                            "retry_after_s": retry_after,
                        }
                    )
                if self.stop.wait(delay):
                    raise Interrupted() from exc
