"""The elacsym HTTP API as seen from elax-plan: is it reachable, and a client to talk to it.

Owns ``check_target`` (one ``GET /metrics``; the real query node has no health or
metadata route, CONTRACT §1.1) and ``open_client`` (an ``httpx.Client`` with the
plan's base URL, bearer token and timeout, or, for ``target.url: embedded``, one
answered by an in-process emulator). It must not write anything, retry, or decide
what a failed check means for a plan: it reports what it saw. TLS verification is
never turned off. The api_key is revealed only into the request header; messages
name the URL without credentials. The emulator is imported only inside
``open_client``, so ``validate`` and ``plan`` stay light.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from elax_plan import __version__
from elax_plan.errors import TargetError
from elax_plan.live.model import TargetLive
from elax_plan.spec.model import TargetSpec
from elax_plan.spec.secrets import display_url, redact, reveal

if TYPE_CHECKING:
    from elax_plan.emulator import Emulator

__all__ = ["TargetClient", "check_target", "ensure_reachable", "open_client"]

EMBEDDED_BASE_URL = "http://embedded.elacsym"
_BODY_CHARS = 200


class TargetClient(httpx.Client):
    """An ``httpx.Client`` for the target; for ``embedded`` it also owns the emulator.

    Use it as a context manager: closing the client stops the emulator.
    """

    def __init__(
        self, target: TargetSpec, *, emulator: Emulator | None = None, **kwargs: Any
    ) -> None:
        super().__init__(
            base_url=EMBEDDED_BASE_URL if emulator is not None else target.url,
            headers=_headers(target),
            timeout=httpx.Timeout(target.timeout),
            **kwargs,
        )
        self.target = target
        self.emulator = emulator

    @property
    def embedded(self) -> bool:
        """Whether requests are answered by an in-process emulator."""
        return self.emulator is not None

    def async_client(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` to the same target (same headers and timeout).

        The caller closes it, before closing this client (which stops an embedded emulator).
        """
        transport: httpx.AsyncBaseTransport | None = None
        if self.emulator is not None:
            from elax_plan.emulator import AsyncEmbeddedTransport

            transport = AsyncEmbeddedTransport(self.emulator)
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=self.headers,
            timeout=self.timeout,
            transport=transport,
        )

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._stop_emulator()

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        # httpx's __exit__ closes the transports without calling close(): stop the emulator here.
        try:
            super().__exit__(exc_type, exc_value, traceback)
        finally:
            self._stop_emulator()

    def _stop_emulator(self) -> None:
        if self.emulator is not None:
            self.emulator.close()


def _headers(target: TargetSpec) -> dict[str, str]:
    headers = {"user-agent": f"elax-plan/{__version__}"}
    if target.api_key:
        # The real node ignores it (CONTRACT §1.1); a proxy in front of it may not.
        headers["authorization"] = f"Bearer {target.api_key.reveal()}"
    return headers


def open_client(
    target: TargetSpec, *, emulator_options: Mapping[str, Any] | None = None
) -> TargetClient:
    """A client for ``target``; for ``url: embedded`` an emulator on ``target.store`` is started.

    ``emulator_options`` are extra ``EmulatorConfig`` fields (``index_interval``,
    ``max_body_bytes``, faults…) and apply only to the embedded emulator.
    """
    if not target.embedded:
        try:
            return TargetClient(target)
        except httpx.InvalidURL as exc:
            raise TargetError(
                f"target.url {display_url(target.url)} is not a valid URL ({exc}).",
                hint="Use http://host:port of the elacsym query node, or embedded.",
            ) from exc
    from elax_plan.emulator import EmbeddedTransport, Emulator, EmulatorConfig

    config = EmulatorConfig(
        store_url=target.store,
        storage_options=dict(reveal(target.storage_options)),
        indexer="background",  # until indexer.mode: command (issue 14) compacts in-process
        **dict(emulator_options or {}),
    )
    try:
        emulator = Emulator(config).start()
    except Exception as exc:  # any fsspec backend failure: report it as the store's
        # The backends raise OSError, botocore and aiohttp errors alike; all mean the same here.
        raise TargetError(
            f"Cannot start the embedded elacsym emulator on store {display_url(target.store)}: "
            f"{redact(str(exc)) or type(exc).__name__}.",
            hint="Check that target.store is writable and that target.storage_options are right.",
        ) from exc
    try:
        return TargetClient(target, emulator=emulator, transport=EmbeddedTransport(emulator))
    except BaseException:
        emulator.close()
        raise


def check_target(target: TargetSpec) -> TargetLive:
    """Whether the elacsym API answers ``GET /metrics`` with 200; never raises for network errors.

    ``embedded`` needs no network and is always reachable.
    """
    url = display_url(target.url)
    if target.embedded:
        return TargetLive(url=url, reachable=True, detail="embedded emulator")
    metrics_url = f"{url}/metrics"
    try:
        with open_client(target) as client:
            response = client.get("/metrics")
    except TargetError as exc:
        return TargetLive(url=url, reachable=False, detail=exc.message)
    except httpx.TimeoutException as exc:
        return TargetLive(
            url=url,
            reachable=False,
            detail=(
                f"GET {metrics_url} timed out after {target.timeout:g}s ({_timeout_kind(exc)}). "
                "Check that the elacsym query node is up and reachable from here, or raise "
                "target.timeout."
            ),
        )
    except httpx.HTTPError as exc:
        return TargetLive(url=url, reachable=False, detail=_transport_detail(metrics_url, exc))
    if response.status_code == 200:
        return TargetLive(url=url, reachable=True, detail="GET /metrics answered 200")
    return TargetLive(
        url=url, reachable=False, detail=_status_detail(metrics_url, response, target)
    )


def ensure_reachable(live: TargetLive) -> TargetLive:
    """``live`` itself when reachable; otherwise a ``TargetError`` carrying its detail."""
    if not live.reachable:
        raise TargetError(live.detail or f"The elacsym API at {live.url} is not reachable.")
    return live


def _timeout_kind(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting"
    if isinstance(exc, httpx.ReadTimeout):
        return "waiting for the answer"
    if isinstance(exc, httpx.WriteTimeout):
        return "sending the request"
    return "waiting for a free connection"


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        current = current.__cause__ or current.__context__
    return None


def _transport_detail(metrics_url: str, exc: httpx.HTTPError) -> str:
    cause = redact(str(exc)) or type(exc).__name__
    tls = _tls_error(exc)
    if tls is not None or "SSL" in cause or "CERTIFICATE" in cause:
        reason = redact(str(tls)) if tls is not None else cause
        return (
            f"TLS handshake with {metrics_url} failed: {reason}. Check the server's certificate "
            "(elax-plan always verifies it; point SSL_CERT_FILE at a private CA bundle if you use "
            "one), or use http:// if the node serves plain HTTP, as elacsym does."
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return (
            f"Cannot request {metrics_url}: {cause}. Check target.url: it must start with "
            "http:// or https://, or be embedded."
        )
    if isinstance(exc, httpx.ConnectError):
        return (
            f"Cannot connect to {metrics_url}: {cause}. Check that the elacsym query node is "
            "running and that target.url names its host and port."
        )
    return (
        f"GET {metrics_url} failed: {cause}. Check that target.url points at an elacsym query "
        "node and that nothing between here and it drops the connection."
    )


def _status_detail(metrics_url: str, response: httpx.Response, target: TargetSpec) -> str:
    body = " ".join(response.text.split())[:_BODY_CHARS]
    said = f": {redact(body)}" if body else " with an empty body"
    hint = "Check that target.url points at an elacsym query node (its /metrics answers 200)."
    if response.status_code in (401, 403):
        hint = (
            "elacsym itself has no auth, so a proxy in front of it refused the request; check "
            "target.api_key" + ("" if target.api_key else " (none is set)") + "."
        )
    elif response.status_code >= 500:
        hint = "The server failed; check its logs, then plan again."
    return f"GET {metrics_url} answered HTTP {response.status_code}{said}. {hint}"
