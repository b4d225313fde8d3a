"""Emulators for the tests: served by uvicorn on a real loopback socket, in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from elax_plan.emulator import Emulator, EmulatorConfig
from elax_plan.emulator.app import AsgiApp
from elax_plan.emulator.server import bind


@dataclass
class RunningEmulator:
    """An emulator answering on ``url``; ``client`` talks to it over the socket."""

    emulator: Emulator
    url: str
    client: httpx.Client

    def write(self, ns: str, body: Any) -> httpx.Response:
        return self.client.post(f"/v2/namespaces/{ns}", json=body)

    def query(self, ns: str, body: Any) -> httpx.Response:
        return self.client.post(f"/v2/namespaces/{ns}/query", json=body)

    def recall(self, ns: str, body: Any) -> httpx.Response:
        return self.client.post(f"/v1/namespaces/{ns}/_debug/recall", json=body)


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``predicate`` until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)


@pytest.fixture
def serve_emulator() -> Iterator[Callable[..., RunningEmulator]]:
    """Factory: start an emulator for a config on a free port; all are stopped after the test."""
    running: list[tuple[uvicorn.Server, threading.Thread, RunningEmulator]] = []

    def start(config: EmulatorConfig) -> RunningEmulator:
        sock = bind("127.0.0.1", 0)
        port = sock.getsockname()[1]
        emulator = Emulator(config).start()
        server = uvicorn.Server(
            uvicorn.Config(AsgiApp(emulator), log_level="warning", lifespan="off")
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        wait_until(lambda: server.started, what="uvicorn to start")
        url = f"http://127.0.0.1:{port}"
        handle = RunningEmulator(emulator, url, httpx.Client(base_url=url, timeout=30))
        running.append((server, thread, handle))
        return handle

    yield start
    for server, thread, handle in running:
        handle.client.close()
        server.should_exit = True
        thread.join(10)
        handle.emulator.close()


@pytest.fixture
def emu(serve_emulator: Callable[..., RunningEmulator], tmp_path: Path) -> RunningEmulator:
    """An emulator on a fresh file:// store with a fast indexer."""
    return serve_emulator(
        EmulatorConfig(store_url=(tmp_path / "store").as_uri(), index_interval=0.02)
    )
