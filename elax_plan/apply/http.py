"""One POST to the target, sorted into an answer or a transient failure.

Owns what counts as transient on the HTTP side (connect errors, timeouts,
resets, 429, 5xx) and reading ``Retry-After``: such answers become a
retryable ``TargetUnavailable`` for ``elax_plan.retry``; every other answer
is returned for the caller to judge. The writer and the verifier both post
through here, so they retry the same things the same way.
"""

from __future__ import annotations

import httpx

from elax_plan.errors import TargetUnavailable
from elax_plan.retry import parse_retry_after

__all__ = ["JSON_HEADERS", "parse_retry_after", "post"]

JSON_HEADERS = {"content-type": "application/json"}


def post(
    client: httpx.Client, path: str, content: bytes, *, timeout: float | None = None
) -> httpx.Response:
    """POST ``content`` as JSON; the response, unless the failure is transient.

    ``timeout``: seconds for this request (None: the client's own, ``target.timeout``).
    Raises ``TargetUnavailable`` (retryable) for a transport error, 429 or 5xx.
    """
    try:
        response = client.post(
            path,
            content=content,
            headers=JSON_HEADERS,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
        )
    except httpx.TransportError as exc:  # connect errors, timeouts, protocol errors, resets
        cause = type(exc).__name__
        text = str(exc) or cause
        raise TargetUnavailable(
            f"POST {path} failed: {text}.", cause=cause, status=None, text=text
        ) from exc
    status = response.status_code
    if status == 429 or status >= 500:
        text = response.text[:500]
        raise TargetUnavailable(
            f"POST {path} answered HTTP {status}: {text.strip()}.",
            cause=f"http_{status}",
            text=text,
            status=status,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    return response
