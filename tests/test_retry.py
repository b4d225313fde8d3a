"""The one retry loop: what it retries, how long it waits, and when it gives up."""

from __future__ import annotations

import random
import threading

import pytest

from elax_plan.errors import StateError, StateUnavailable, TargetError, TargetUnavailable
from elax_plan.retry import Interrupted, Retrier, RetryPolicy

FAST = RetryPolicy(attempts=4, initial=0.001, max=0.002)


class Flaky:
    """Fails with ``error`` the first ``failures`` calls, then answers ``"ok"``."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_backoff_grows_and_honours_retry_after() -> None:
    """Delays double up to max, with jitter in [50%, 100%]; Retry-After is a floor."""
    policy = RetryPolicy(attempts=10, initial=1.0, max=8.0)
    rng = random.Random(0)
    delays = [policy.delay(a, rng, None) for a in range(1, 7)]
    bases = [1, 2, 4, 8, 8, 8]
    assert all(b / 2 <= d <= b for d, b in zip(delays, bases, strict=True))
    assert policy.delay(1, rng, 5.0) == 5.0


@pytest.mark.parametrize(
    "error",
    [TargetUnavailable("503", cause="http_503", status=503), StateUnavailable("store busy")],
)
def test_a_retryable_error_is_retried_until_the_call_succeeds(error: Exception) -> None:
    """Errors marked retryable in errors.py are retried; each retry is reported."""
    seen: list[dict[str, object]] = []
    fn = Flaky(3, error)
    assert Retrier(FAST, on_retry=seen.append).call(fn, what="poll") == "ok"
    assert fn.calls == 4
    assert [r["attempt"] for r in seen] == [1, 2, 3]
    assert all(r["what"] == "poll" for r in seen)


@pytest.mark.parametrize("error", [TargetError("bad"), StateError("bad"), ValueError("bug")])
def test_a_terminal_error_is_raised_at_once(error: Exception) -> None:
    """Errors not marked retryable (and non-ElaxError bugs) are not retried."""
    fn = Flaky(1, error)
    with pytest.raises(type(error)):
        Retrier(FAST).call(fn)
    assert fn.calls == 1


def test_the_last_error_is_raised_when_attempts_run_out() -> None:
    """After ``attempts`` tries the last retryable error propagates unchanged."""
    error = TargetUnavailable("still down", cause="http_503", status=503)
    fn = Flaky(100, error)
    with pytest.raises(TargetUnavailable) as raised:
        Retrier(FAST).call(fn)
    assert raised.value is error
    assert fn.calls == FAST.attempts


def test_retry_after_sets_the_wait() -> None:
    """A server's Retry-After is passed to the backoff and reported."""
    seen: list[dict[str, object]] = []
    fn = Flaky(1, TargetUnavailable("429", cause="http_429", status=429, retry_after=0.0))
    Retrier(FAST, on_retry=seen.append).call(fn)
    assert seen[0]["retry_after_s"] == 0.0
    assert seen[0]["cause"] == "http_429"


def test_a_stop_ends_the_backoff_without_another_try() -> None:
    """Setting the stop event during a long backoff raises Interrupted at once."""
    stop = threading.Event()
    fn = Flaky(100, TargetUnavailable("down"))
    retrier = Retrier(RetryPolicy(100, 60.0, 60.0), stop=stop, on_retry=lambda _: stop.set())
    with pytest.raises(Interrupted):
        retrier.call(fn)
    assert fn.calls == 1


def test_a_retry_that_would_overrun_max_wait_is_not_made() -> None:
    """``max_wait`` bounds the total backoff: a Retry-After past it re-raises at once."""
    slow = TargetUnavailable("429", cause="http_429", status=429, retry_after=30.0)
    fn = Flaky(1, slow)
    with pytest.raises(TargetUnavailable):
        Retrier(RetryPolicy(attempts=5, initial=0.001, max=0.002, max_wait=1.0)).call(fn)
    assert fn.calls == 1
    short = TargetUnavailable("429", cause="http_429", status=429, retry_after=0.01)
    budget = RetryPolicy(attempts=5, initial=0.001, max=0.002, max_wait=0.025)
    fn = Flaky(4, short)
    with pytest.raises(TargetUnavailable):
        Retrier(budget).call(fn)
    assert fn.calls == 3, "two waits of 0.01 s fit in 0.025 s, a third does not"
