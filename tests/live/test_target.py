"""The target reader: ``GET /metrics`` reachability and the client for remote and embedded targets."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from elax_plan.emulator import EmulatorConfig
from elax_plan.errors import TargetError
from elax_plan.live.store import read_namespace
from elax_plan.live.target import check_target, ensure_reachable, open_client
from elax_plan.spec.secrets import Secret
from tests.conftest import RunningEmulator
from tests.live.conftest import CannedServer, target_spec


def _indexer_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "elacsym-indexer" and t.is_alive())


DOC = {"upserts": [{"id": "a", "vector": [0.5, 0.25], "attributes": {"title": "x"}}]}


def test_running_emulator_is_reachable(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """A real emulator on a socket answers GET /metrics with 200: reachable."""
    emu = serve_emulator(EmulatorConfig(store_url=(tmp_path / "store").as_uri()))
    live = check_target(target_spec(emu.url))
    assert live.reachable, live.detail
    assert live.url == emu.url
    assert ensure_reachable(live) is live


def test_closed_port_is_unreachable_and_named(closed_port: int) -> None:
    """Nothing listening: unreachable, and the detail names the URL and what to check."""
    url = f"http://127.0.0.1:{closed_port}"
    live = check_target(target_spec(url))
    assert not live.reachable
    assert f"{url}/metrics" in live.detail
    assert "Cannot connect" in live.detail and "target.url" in live.detail
    with pytest.raises(TargetError) as raised:
        ensure_reachable(live)
    assert raised.value.message == live.detail


def test_server_error_on_metrics_is_unreachable_with_status_and_body(
    http_server: Callable[..., CannedServer],
) -> None:
    """A 500 on /metrics: unreachable; the detail carries the status and the server's text."""
    server = http_server(500, b"database on fire\n" + b"x" * 500)
    live = check_target(target_spec(server.url))
    assert not live.reachable
    assert "HTTP 500" in live.detail and "database on fire" in live.detail
    assert "x" * 201 not in live.detail  # the body is cut to 200 characters
    assert server.seen[0]["path"] == "/metrics"


def test_api_key_is_sent_as_bearer_and_never_shown(
    http_server: Callable[..., CannedServer],
) -> None:
    """The api_key goes out as a bearer token; a 401's detail points at it without showing it."""
    server = http_server(401, b"unauthorized")
    key = "k3y-that-must-not-leak"
    live = check_target(target_spec(server.url, api_key=Secret(key)))
    assert server.seen[0]["authorization"] == f"Bearer {key}"
    assert not live.reachable
    assert "HTTP 401" in live.detail and "target.api_key" in live.detail
    assert key not in live.detail


def test_path_prefix_of_target_url_is_kept(http_server: Callable[..., CannedServer]) -> None:
    """A target.url behind a path prefix is asked for {url}/metrics."""
    server = http_server(200, b"elax_metrics_up 1\n")
    live = check_target(target_spec(f"{server.url}/elacsym"))
    assert live.reachable
    assert server.seen[0]["path"] == "/elacsym/metrics"


def test_silent_server_times_out_with_the_plan_timeout(silent_port: int) -> None:
    """A server that never answers: unreachable after target.timeout, saying so."""
    live = check_target(target_spec(f"http://127.0.0.1:{silent_port}", timeout=0.2))
    assert not live.reachable
    assert "timed out after 0.2s" in live.detail and "target.timeout" in live.detail


def test_untrusted_certificate_fails_as_tls(
    http_server: Callable[..., CannedServer], self_signed_tls: ssl.SSLContext
) -> None:
    """A self-signed certificate is not accepted: verification stays on and the detail says TLS."""
    server = http_server(200, b"elax_metrics_up 1\n", tls=self_signed_tls)
    live = check_target(target_spec(server.url))
    assert not live.reachable
    assert live.detail.startswith(f"TLS handshake with {server.url}/metrics failed")
    assert "CERTIFICATE_VERIFY_FAILED" in live.detail


def test_embedded_is_reachable_without_network_or_store(tmp_path: Path) -> None:
    """url: embedded needs no network: reachable, and nothing is created in the store."""
    store = tmp_path / "not-yet"
    live = check_target(target_spec("embedded", store.as_uri()))
    assert live.reachable and live.detail == "embedded emulator"
    assert not store.exists()


def test_embedded_emulator_has_no_indexer_daemon_and_compacts_on_request(tmp_path: Path) -> None:
    """Like the real node, the embedded emulator never indexes by itself; compact_in_process
    (what `indexer.mode: command` runs for embedded) does, and says what `elax-cli` says."""
    store = (tmp_path / "store").as_uri()
    before = _indexer_threads()
    with open_client(target_spec("embedded", store)) as client:
        assert client.post("/v2/namespaces/products", json=DOC).json() == {"wal_sequence": 1}
        assert _indexer_threads() == before
        assert read_namespace(store, {}, "products").indexed_wal == 0
        line = client.compact_in_process("products")
        assert line == "compacted namespace 'products' to 1 parts (indexed_wal=1)"
    assert read_namespace(store, {}, "products").indexed_wal == 1


def test_embedded_client_round_trip_and_close_stops_emulator(tmp_path: Path) -> None:
    """open_client(embedded) writes through the emulator; the write lands in target.store."""
    store = (tmp_path / "store").as_uri()
    target = target_spec("embedded", store)
    before = _indexer_threads()
    # A background indexer (what a test may opt into) is a thread: close must stop it.
    with open_client(target, emulator_options={"indexer": "background"}) as client:
        assert client.embedded
        assert client.post("/v2/namespaces/products", json=DOC).json() == {"wal_sequence": 1}
        hits = client.post("/v2/namespaces/products/query", json={"vector": [0.5, 0.25]})
        assert [h["id"] for h in hits.json()["hits"]] == ["a"]
        assert _indexer_threads() == before + 1
    assert _indexer_threads() == before
    assert read_namespace(store, {}, "products").wal_highwater == 1


def test_remote_client_and_async_client_talk_to_a_served_emulator(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """open_client(url) and its async twin reach a real emulator over the socket."""
    emu = serve_emulator(EmulatorConfig(store_url=(tmp_path / "store").as_uri()))
    with open_client(target_spec(emu.url)) as client:
        assert not client.embedded
        assert client.post("/v2/namespaces/products", json=DOC).json() == {"wal_sequence": 1}

        async def write_async() -> int:
            async with client.async_client() as aclient:
                response = await aclient.post("/v2/namespaces/products", json=DOC)
                return int(response.json()["wal_sequence"])

        assert asyncio.run(write_async()) == 2


def test_embedded_async_client_answers_from_the_same_emulator(tmp_path: Path) -> None:
    """The async client of an embedded target shares its emulator (same WAL sequence)."""
    target = target_spec("embedded", (tmp_path / "store").as_uri())
    with open_client(target) as client:
        client.post("/v2/namespaces/products", json=DOC)

        async def write_async() -> int:
            async with client.async_client() as aclient:
                response = await aclient.post("/v2/namespaces/products", json=DOC)
                return int(response.json()["wal_sequence"])

        assert asyncio.run(write_async()) == 2
