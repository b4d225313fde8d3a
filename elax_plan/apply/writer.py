"""Send one write body to elacsym, retrying what is transient, and classify what is not.

Owns the HTTP side of a write: ``POST /v2/namespaces/{ns}`` with the portable
body, retries with exponential backoff and jitter that honour ``Retry-After``
(connect errors, timeouts, 429, 5xx), and the three ways a write can end:
acknowledged with a ``wal_sequence``, ``PayloadTooLarge`` (413: the caller
splits the chunk), or a ``WriteRejected`` carrying the server's status and
text. It does not know about chunks, files or checkpoints.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from elax_plan.apply.http import post
from elax_plan.errors import TargetUnavailable, WriteRejected
from elax_plan.retry import Retrier, RetryPolicy


class PayloadTooLarge(Exception):
    """The server answered 413: the body must be split."""


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
        self._retrier = Retrier(retry, stop=stop, on_retry=on_retry, rng=rng)

    def send(self, body: bytes) -> int:
        """POST ``body``; return its ``wal_sequence`` once acknowledged.

        Raises ``Interrupted`` when the run stops first."""
        try:
            response = self._retrier.call(lambda: post(self.client, self.path, body), what="write")
        except TargetUnavailable as exc:
            raise WriteRejected(
                f"POST {self.path} failed {self.retry.attempts} times; the last answer was "
                f"{'HTTP ' + str(exc.status) if exc.status else exc.cause}: {exc.text.strip()}.",
                exc.status,
                exc.text,
                "Check that the target is up and healthy, or raise ingest.retry.attempts; "
                "then run `elax-plan apply` again to resume.",
            ) from exc
        status = response.status_code
        if status == 200:
            return self._sequence(response)
        if status == 413:
            raise PayloadTooLarge()
        detail = response.text[:500]
        raise WriteRejected(
            f"POST {self.path} was refused with HTTP {status}: {detail.strip()}.",
            status,
            detail,
            "This is not retried: fix the data or the plan (the message above is "
            "the server's), then run `elax-plan apply` again to resume.",
        )

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
