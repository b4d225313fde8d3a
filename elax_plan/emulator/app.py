"""The emulator's HTTP surface: routing, status codes and bodies exactly as CONTRACT §1–§3.

Owns ``Emulator`` (stores + namespaces + indexer + metrics behind one synchronous
``handle`` call), the ASGI app that serves it over a socket, and the httpx
transports that serve it in-process. Request checks run in axum's order:
route, content type (415), body size (413), JSON syntax (400, plain text),
shape (422, plain text), then the handler (400/412/500 with ``{"error": …}``).
``GET`` routes answer ``HEAD`` too. Besides the real routes, ``/_emulator/metrics``
always serves the emulator's own series; ``/metrics`` answers the real node's
three-line stub unless ``metrics="rich"`` serves the series there too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx
import orjson

from elax_plan.emulator import metrics as metrics_mod
from elax_plan.emulator.body import SCHEMAS, JsonSyntaxError, check_duplicate_fields, decode_body
from elax_plan.emulator.compaction import CompactResult, compact_stores
from elax_plan.emulator.config import EmulatorConfig
from elax_plan.emulator.indexer import Indexer
from elax_plan.emulator.model import BadRequest, EmulatorError
from elax_plan.emulator.namespace import (
    CrashFault,
    NamespaceOptions,
    Namespaces,
    check_namespace_name,
)
from elax_plan.emulator.query_model import parse_query, parse_recall
from elax_plan.emulator.storage import open_stores
from elax_plan.emulator.write_model import parse_write_request

log = logging.getLogger("elax_plan.emulator")

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
# Bodies over the cap are read and discarded up to this size so that the client sees the 413
# instead of a reset connection; beyond it the connection is closed.
_DRAIN_LIMIT = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    content_length: int | None = None  # set for HEAD: the length the GET body would have

    def header_list(self) -> list[tuple[str, str]]:
        out = list(self.headers)
        if self.content_type is not None:
            out.append(("content-type", self.content_type))
        length = len(self.body) if self.content_length is None else self.content_length
        out.append(("content-length", str(length)))
        return out

    def for_head(self) -> Response:
        """The same answer without its body, as axum answers HEAD on a GET route."""
        return dataclasses.replace(self, body=b"", content_length=len(self.body))


def _json(status: int, payload: Any) -> Response:
    return Response(status, orjson.dumps(payload), JSON)


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


def _text(status: int, message: str) -> Response:
    return Response(status, message.encode(), TEXT)


def is_json_content_type(value: str | None) -> bool:
    """axum's rule: ``application/json`` or ``application/*+json``, parameters allowed."""
    if not value:
        return False
    mime = value.split(";", 1)[0].strip().lower()
    kind, _, subtype = mime.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


PAYLOAD_TOO_LARGE = _text(413, "Failed to buffer the request body: length limit exceeded")
UNSUPPORTED_MEDIA = _text(415, "Expected request with `Content-Type: application/json`")

Route = tuple[str, str | None]  # (route name, namespace)
GET_ROUTES = ("metrics", "emulator_metrics")


def match_route(raw_path: bytes) -> Route | None:
    """Route name and percent-decoded namespace for a raw request path, or None (404)."""
    path = raw_path.split(b"?", 1)[0]
    if path == b"/metrics":
        return ("metrics", None)
    if path == b"/_emulator/metrics":
        return ("emulator_metrics", None)
    parts = path.split(b"/")
    if len(parts) < 4 or parts[0] != b"" or parts[2] != b"namespaces":
        return None
    version, rest = parts[1], parts[4:]
    try:
        ns = unquote_to_bytes(parts[3]).decode("utf-8")
    except UnicodeDecodeError:
        ns = "\x00"  # rejected by the namespace check with a 400
    if version == b"v2" and rest == []:
        return ("write", ns)
    if version == b"v2" and rest == [b"query"]:
        return ("query", ns)
    if version == b"v1" and rest == [b"_debug", b"recall"]:
        return ("recall", ns)
    return None


class Emulator:
    """A local elacsym: stores, namespaces, indexer and the request handler.

    ``owns_process`` is for ``serve()`` only: the ``crash_during_append`` fault kills the
    process it runs in, so an in-process emulator (tests, ``target.url: embedded``)
    refuses it.
    """

    def __init__(self, config: EmulatorConfig, *, owns_process: bool = False) -> None:
        if config.crash_during_append is not None and not owns_process:
            raise ValueError(
                "crash_during_append kills the process: only the `elax-plan emulator` server "
                "accepts it"
            )
        self.config = config
        self.stores = open_stores(
            config.store_url,
            config.storage_options,
            data_root=config.data_root,
            object_store=config.object_store,
        )
        self.store = self.stores.meta
        crash = CrashFault(config.crash_during_append) if config.crash_during_append else None
        self.namespaces = Namespaces(
            self.stores,
            NamespaceOptions(
                real_store=config.real_store,
                recover_from_parts=config.recover_from_parts,
                race_appends=config.race_appends,
                race_model=config.race_model,
                serialised=config.compat == "c152c2d",
                regress_highwater_after=config.regress_highwater_after,
                seed=config.seed,
            ),
            crash,
        )
        self.indexer = Indexer(
            self.namespaces,
            self.stores,
            interval=config.index_interval,
            rows_per_s=config.index_rows_per_s,
            rows_per_part=config.rows_per_part,
            max_active_parts=config.max_active_parts,
        )
        self.metrics = metrics_mod.Metrics()
        self._rng = random.Random(config.seed)
        self._started = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Emulator:
        if not self._started:
            self.namespaces.discover()
            if self.config.indexer == "background":
                self.indexer.start()
            self._started = True
        return self

    def close(self) -> None:
        self.indexer.stop()
        self._started = False

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def compact(self, namespace: str, *, max_runs: int | None = None) -> CompactResult:
        """What ``elax-plan emulator compact`` does, on this emulator's own stores (for
        ``target.url: embedded``, which has no data root another process could work on).
        Like the real command it takes no lock: the caller must not write meanwhile (H2)."""
        return compact_stores(
            self.stores,
            namespace,
            rows_per_part=self.config.rows_per_part,
            max_active_parts=self.config.max_active_parts,
            max_runs=max_runs,
        )

    # --- requests -------------------------------------------------------------------------

    def preflight(self, method: str, raw_path: bytes, content_type: str | None) -> Response | None:
        """Answers that need no body (404, 405, 415); None when the body should be read."""
        route = match_route(raw_path)
        if route is None:
            return Response(404)
        name, _ = route
        if name in GET_ROUTES:
            if method not in ("GET", "HEAD"):
                return Response(405, headers=(("allow", "GET,HEAD"),))
            return None
        if method != "POST":
            return Response(405, headers=(("allow", "POST"),))
        if not is_json_content_type(content_type):
            return UNSUPPORTED_MEDIA
        return None

    def handle(
        self, method: str, raw_path: bytes, content_type: str | None, body: bytes
    ) -> Response:
        """Answer one request; never raises."""
        early = self.preflight(method, raw_path, content_type)
        if early is not None:
            return early
        route = match_route(raw_path)
        assert route is not None
        name, ns_name = route
        if name in GET_ROUTES:
            response = self._metrics(real=name == "metrics" and self.config.metrics == "real")
            return response.for_head() if method == "HEAD" else response
        if len(body) > self.config.max_body_bytes:
            return PAYLOAD_TOO_LARGE
        assert ns_name is not None
        self.metrics.receive(name)
        response = self._api(name, ns_name, body)
        self.metrics.record(name, response.status)
        return response

    def _metrics(self, real: bool) -> Response:
        if real:
            return Response(200, metrics_mod.REAL_STUB, metrics_mod.CONTENT_TYPE)
        body = self.metrics.render(self.namespaces, self.indexer.stats)
        return Response(200, body, metrics_mod.CONTENT_TYPE)

    def _injected_fault(self) -> Response | None:
        if self.config.latency:
            time.sleep(self.config.latency)
        if self.config.fail_rate and self._rng.random() < self.config.fail_rate:
            if self._rng.random() < 0.5:
                return _error(503, "injected fault: service unavailable")
            return Response(
                429,
                orjson.dumps({"error": "injected fault: too many requests"}),
                JSON,
                (("retry-after", str(self.config.retry_after_s)),),
            )
        return None

    def _api(self, name: str, ns_name: str, body: bytes) -> Response:
        try:
            check_namespace_name(ns_name)
        except BadRequest as exc:
            return _error(400, exc.message)
        fault = self._injected_fault()
        if fault is not None:
            return fault
        try:
            decoded, body = decode_body(body)
        except JsonSyntaxError as exc:
            return _text(400, f"Failed to parse the request body as JSON: {exc}")
        compat = self.config.compat
        try:
            check_duplicate_fields(body, decoded, SCHEMAS[(name, compat)])
            if name == "write":
                bools = b"true" in body or b"false" in body
                write = parse_write_request(ns_name, decoded, compat, bools)
                ns = self.namespaces.get(ns_name)
                seq = ns.append(write.batch, write.conditions, write.reject_empty)
                return _json(200, {"wal_sequence": seq})
            if name == "query":
                query = parse_query(decoded, compat)
                return _json(200, self.namespaces.get(ns_name).query(query))
            recall = parse_recall(decoded)
            return _json(200, self.namespaces.get(ns_name).recall(recall))
        except EmulatorError as exc:
            if exc.status == 422:
                return _text(422, exc.message)
            return _error(exc.status, exc.message)
        except Exception as exc:  # a store or internal failure: the real node answers 500
            log.exception("request failed: %s %s", name, ns_name)
            return _error(500, str(exc) or type(exc).__name__)


# --- ASGI (socket server) --------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AsgiApp:
    """Serves an ``Emulator`` to uvicorn; the handler runs in a worker thread."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        raw_path = scope.get("raw_path") or scope["path"].encode()
        early = self.emulator.preflight(method, raw_path, headers.get("content-type"))
        if early is not None:
            await _send(send, early)
            return
        limit = self.emulator.config.max_body_bytes
        declared = headers.get("content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > limit
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                too_large = True
            if not too_large:
                chunks.append(chunk)
            more = message.get("more_body", False)
            if size > _DRAIN_LIMIT:
                break
        if too_large:
            await _send(send, PAYLOAD_TOO_LARGE)
            return
        response = await asyncio.to_thread(
            self.emulator.handle, method, raw_path, headers.get("content-type"), b"".join(chunks)
        )
        await _send(send, response)


async def _send(send: Send, response: Response) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(k.encode(), v.encode()) for k, v in response.header_list()],
        }
    )
    await send({"type": "http.response.body", "body": response.body})


# --- httpx transports (in-process) -----------------------------------------------------------


def _to_httpx(request: httpx.Request, response: Response) -> httpx.Response:
    return httpx.Response(
        response.status, headers=response.header_list(), content=response.body, request=request
    )


class EmbeddedTransport(httpx.BaseTransport):
    """A synchronous httpx transport that answers from an in-process ``Emulator``."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        response = self.emulator.handle(
            request.method, request.url.raw_path, request.headers.get("content-type"), body
        )
        return _to_httpx(request, response)


class AsyncEmbeddedTransport(httpx.AsyncBaseTransport):
    """The asynchronous twin of ``EmbeddedTransport``; the handler runs in a worker thread."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await asyncio.to_thread(
            self.emulator.handle,
            request.method,
            request.url.raw_path,
            request.headers.get("content-type"),
            body,
        )
        return _to_httpx(request, response)
