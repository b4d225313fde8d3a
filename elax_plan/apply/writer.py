"""Send one write body to elacsym, retrying what is transient, and classify what is not.

Owns the HTTP side of a write: ``POST /v2/namespaces/{ns}`` with the portable
body, retries with exponential backoff and jitter that honour ``Retry-After``
(connect errors, timeouts, 429, 5xx), and the three ways a write can end:
acknowledged with a ``wal_sequence``, ``PayloadTooLarge`` (413: the caller
splits the chunk), or a ``WriteRejected`` carrying the server's status and
text. It does not know about chunks, files or checkpoints.
"""

from __future__ import annotations

import builtins
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from elax_plan.errors import TargetError

RETRY_AFTER_CAP_S = 300.0
_TRANSIENT_ERRORS = (
    httpx.TransportError,  # connect errors, timeouts, protocol errors, resets
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``ingest.retry``: attempts include the first try; delays in seconds."""

    attempts: int = 8
    initial: float = 0.5
    max: float = 30.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Backoff before retry number ``attempt`` (1-based): exponential with jitter."""
        base = float(builtins.min(self.max, self.initial * (2 ** (attempt - 1))))
        jittered = base * (0.5 + rng.random() / 2)
        if retry_after is not None:
            return float(builtins.max(jittered, builtins.min(retry_after, RETRY_AFTER_CAP_S)))
        return jittered


class PayloadTooLarge(Exception):
    """The server answered 413: the body must be split."""


class WriteRejected(TargetError):
    """A write the server refused for good (4xx other than 413/429), or retries ran out."""

    def __init__(self, summary: str, status: int | None, server_text: str, hint: str) -> None:
        self.status = status
        self.server_text = server_text
        super().__init__(summary, hint=hint)


class WriteInterrupted(Exception):
    """The run is stopping; the write was not acknowledged."""


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
    from datetime import UTC, datetime

    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Writer:
    """Posts write bodies to one namespace; thread-safe (one shared httpx client)."""

    def __init__(
        self,
        client: httpx.Client,
        namespace: str,
        retry: RetryPolicy,
        *,
        stop: threading.Event | None = None,
        on_retry: Callable[[dict[str, Any]], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.path = f"/v2/namespaces/{quote(namespace, safe='')}"
        self.retry = retry
        self.stop = stop or threading.Event()
        self.on_retry = on_retry
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()

    def send(self, body: bytes) -> int:
        """POST ``body``; return its ``wal_sequence`` once acknowledged."""
        attempt = 0
        while True:
            attempt += 1
            if self.stop.is_set():
                raise WriteInterrupted()
            cause: str
            retry_after: float | None = None
            try:
                response = self.client.post(
                    self.path, content=body, headers={"content-type": "application/json"}
                )
            except _TRANSIENT_ERRORS as exc:
                cause = type(exc).__name__
                detail = str(exc) or cause
                status: int | None = None
            else:
                status = response.status_code
                if status == 200:
                    return self._sequence(response)
                if status == 413:
                    raise PayloadTooLarge()
                detail = response.text[:500]
                if status != 429 and status < 500:
                    raise WriteRejected(
                        f"POST {self.path} was refused with HTTP {status}: {detail.strip()}.",
                        status,
                        detail,
                        "This is not retried: fix the data or the plan (the message above is "
                        "the server's), then run `elax-plan apply` again to resume.",
                    )
                cause = f"http_{status}"
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            if attempt >= self.retry.attempts:
                raise WriteRejected(
                    f"POST {self.path} failed {attempt} times; the last answer was "
                    f"{'HTTP ' + str(status) if status else cause}: {detail.strip()}.",
                    status,
                    detail,
                    "Check that the target is up and healthy, or raise ingest.retry.attempts; "
                    "then run `elax-plan apply` again to resume.",
                )
            with self._rng_lock:
                delay = self.retry.delay(attempt, self._rng, retry_after)
            if self.on_retry is not None:
                self.on_retry(
                    {
                        "cause": cause,
                        "attempt": attempt,
                        "delay_s": round(delay, 3),
                        "retry_after_s": retry_after,
                    }
                )
            if self.stop.wait(delay):
                raise WriteInterrupted()

    def _sequence(self, response: httpx.Response) -> int:
        try:
            seq = orjson.loads(response.content)["wal_sequence"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise WriteRejected(
                f"POST {self.path} answered 200 without a wal_sequence: {response.text[:200]!r}.",
                200,
                response.text[:500],
                "Is target.url an elacsym query node?",
            ) from exc
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise WriteRejected(
                f"POST {self.path} answered a wal_sequence that is not an integer: {seq!r}.",
                200,
                response.text[:500],
                "Is target.url an elacsym query node?",
            )
        return seq
