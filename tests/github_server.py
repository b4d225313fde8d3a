"""A fake GitHub REST API for ``elax-plan comment``: the endpoints it calls, over a real socket.

Serves ``GET /user``, ``GET /repos/{owner}/{repo}/issues/{n}/comments`` (``per_page``
and ``page``, a ``Link: rel="next"`` header as GitHub sends it), ``POST`` to the same
path and ``PATCH /repos/{owner}/{repo}/issues/comments/{id}``, as a bare ASGI app under
uvicorn on a free loopback port (the pattern of ``tests/conftest.py``'s emulators). Every
request must carry ``Authorization: Bearer <token>`` (else 401, as GitHub answers); each
is recorded — method, path, query, headers without ``authorization``, JSON body, the
status answered, when it arrived, whether the token matched. ``fail_next`` scripts
failures (a 502, a 403 secondary rate limit with ``Retry-After``…), optionally after
doing the work, like a proxy that loses the answer of a create that landed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn

from elax_plan.emulator.server import bind
from tests.conftest import wait_until

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived, and what it was answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    status: int
    at: float
    token_ok: bool


@dataclass
class Failure:
    """A scripted answer for the next request with ``method``; ``after_work``: answer it only
    after doing what the request asked (the create landed, the answer was lost)."""

    method: str
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    after_work: bool = False


class FakeGitHub:
    """The API's state (comments per pull request), scripted failures and the request log.

    ``login``: what ``GET /user`` answers; None answers 403 as for an App installation
    token (Actions' GITHUB_TOKEN), and comments are then posted as ``github-actions[bot]``.
    """

    def __init__(self, token: str, login: str | None = None) -> None:
        self.token = token
        self.login = login
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self.url = ""
        self._next_id = 1000
        self._lock = threading.Lock()

    def add_comment(self, pr: int, body: str, login: str = "reviewer") -> dict[str, Any]:
        """A comment already on the pull request, as someone wrote it."""
        with self._lock:
            self._next_id += 1
            comment = {
                "id": self._next_id,
                "body": body,
                "user": {"login": login},
                "html_url": f"https://github.example/acme/search/pull/{pr}#issuecomment-{self._next_id}",
            }
            self.comments.setdefault(pr, []).append(comment)
            return comment

    def fail_next(
        self,
        method: str,
        status: int,
        message: str = "Server Error",
        headers: dict[str, str] | None = None,
        *,
        after_work: bool = False,
    ) -> None:
        self.failures.append(Failure(method, status, message, headers or {}, after_work))

    def calls(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request so far."""
        return [(r.method, r.path, r.status) for r in self.requests]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = orjson.loads(raw) if raw else None
        status, answer, extra = self._answer(scope["method"], scope["path"], scope, headers, body)
        token_ok = headers.get("authorization") == f"Bearer {self.token}"
        shown = {k: v for k, v in headers.items() if k != "authorization"}
        query = scope["query_string"].decode()
        self.requests.append(
            Recorded(
                scope["method"],
                scope["path"],
                query,
                shown,
                body,
                status,
                time.monotonic(),
                token_ok,
            )
        )
        out = [(b"content-type", b"application/json")]
        out += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})

    def _answer(
        self, method: str, path: str, scope: Scope, headers: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials"}, {}
        failure = next((f for f in self.failures if f.method == method), None)
        if failure is not None:
            self.failures.remove(failure)
            if failure.after_work:
                self._route(method, path, scope, body)
            return failure.status, {"message": failure.message}, failure.headers
        return self._route(method, path, scope, body)

    def _route(
        self, method: str, path: str, scope: Scope, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        parts = path.strip("/").split("/")
        if method == "GET" and parts == ["user"]:
            if self.login is None:
                return 403, {"message": "Resource not accessible by integration"}, {}
            return 200, {"login": self.login}, {}
        if len(parts) == 6 and parts[0] == "repos" and parts[3:6:2] == ["issues", "comments"]:
            pr = int(parts[4])
            if method == "GET":
                return self._page(pr, path, parse_qs(scope["query_string"].decode()))
            if method == "POST":
                comment = self.add_comment(pr, body["body"], self.login or "github-actions[bot]")
                return 201, comment, {}
        if len(parts) == 6 and parts[3:5] == ["issues", "comments"] and method == "PATCH":
            for comments in self.comments.values():
                for comment in comments:
                    if comment["id"] == int(parts[5]):
                        comment["body"] = body["body"]
                        return 200, comment, {}
        return 404, {"message": "Not Found"}, {}

    def _page(
        self, pr: int, path: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = min(100, int(query.get("per_page", ["30"])[0]))
        page = int(query.get("page", ["1"])[0])
        comments = self.comments.get(pr, [])
        chunk = comments[(page - 1) * per_page : page * per_page]
        extra: dict[str, str] = {}
        if page * per_page < len(comments):
            nxt = f"{self.url}{path}?per_page={per_page}&page={page + 1}"
            extra["link"] = f'<{nxt}>; rel="next"'
        return 200, chunk, extra


@contextmanager
def serve_github(token: str, login: str | None = None) -> Iterator[FakeGitHub]:
    """A ``FakeGitHub`` on 127.0.0.1 and a free port (``.url``), stopped afterwards."""
    github = FakeGitHub(token, login)
    sock = bind("127.0.0.1", 0)
    github.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(github, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="the fake GitHub to start")
    try:
        yield github
    finally:
        server.should_exit = True
        thread.join(10)
