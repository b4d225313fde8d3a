"""``python -m tests.leaks.fault ARGS``: the real CLI with test-only bugs planted in apply and in
``comment``'s GitHub client.

The first write body apply sends raises a ``RuntimeError`` (an internal error,
not an ``ElaxError``) whose message holds what real bugs leak: the repr of the
request and its raw headers (``'authorization': 'Bearer <api key>'``) and a URL
with ``access_token=<token>``. The token is ``LEAK_FAULT_TOKEN`` from the
environment, a value no plan field holds, so only the URL-shape rule can hide
it. The exception is chained from another carrying the api key, and has a note
with the URL, so every part of a traceback carries a secret.

Likewise the first comment ``comment`` creates or updates raises a ``RuntimeError`` with
the repr of the request to GitHub and its headers (``Bearer <GITHUB_TOKEN>``), chained
from one naming the token.
"""

from __future__ import annotations

import os

import httpx

from elax_plan import github
from elax_plan.apply import writer
from elax_plan.cli import main


def _faulty_send(self: writer.Writer, body: bytes) -> int:
    token = os.environ["LEAK_FAULT_TOKEN"]
    client = self.client
    assert isinstance(client, httpx.Client)
    request = client.build_request("POST", f"{self.path}?access_token={token}", content=body)
    api_key = request.headers.get("authorization", "").removeprefix("Bearer ")
    try:
        raise ValueError(f"upstream refused key {api_key}")
    except ValueError as cause:
        error = RuntimeError(
            f"test fault: {request!r} with headers {dict(request.headers)!r} to {request.url}"
        )
        error.add_note(f"while sending to {request.url}")
        raise error from cause


def _faulty_github_send(
    self: github._GitHub, method: str, path: str, text: str, what: str
) -> tuple[int, str]:
    request = self._client.build_request(method, f"{self.base}{path}", json={"body": text})
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    try:
        raise ValueError(f"GitHub refused token {token}")
    except ValueError as cause:
        raise RuntimeError(
            f"test fault: {request!r} with headers {dict(request.headers)!r}"
        ) from cause


if __name__ == "__main__":
    writer.Writer.send = _faulty_send  # type: ignore[method-assign]
    github._GitHub.send = _faulty_github_send  # type: ignore[method-assign]
    main()
