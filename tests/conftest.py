"""Fixtures shared by the whole suite: a real S3-compatible server (moto), store URLs, and
emulators served by uvicorn on a real loopback socket.

The S3 server is moto in server mode on a free loopback port, started once per
session by the tests themselves; every test that needs a bucket gets its own.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from elax_plan.emulator import Emulator, EmulatorConfig
from elax_plan.emulator.app import AsgiApp
from elax_plan.emulator.server import bind


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def storage_options(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "key": "testing",
            "secret": "testing",
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 and a free port, for the whole session."""
    from moto.server import ThreadedMotoServer

    fake = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in fake}
    os.environ.update(fake)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass(frozen=True)
class StoreLocation:
    """A fresh, empty store: its fsspec URL and the options to open it."""

    kind: str
    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def filesystem(self) -> Any:
        import fsspec

        fs, _ = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return fs

    def path(self, key: str) -> str:
        import fsspec

        _, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return f"{root.rstrip('/')}/{key}"


def make_bucket(s3: S3Server) -> str:
    import s3fs

    name = f"t-{uuid.uuid4().hex[:20]}"
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.storage_options())
    fs.mkdir(name)
    return name


@pytest.fixture(params=["memory", "file", "s3"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    """An empty store on each backend: memory://, file:// and s3:// (moto server)."""
    kind = request.param
    if kind == "memory":
        return StoreLocation(kind, f"memory://t-{uuid.uuid4().hex}")
    if kind == "file":
        return StoreLocation(kind, (tmp_path / "store").as_uri())
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket = make_bucket(s3)
    return StoreLocation(kind, f"s3://{bucket}/root", s3.storage_options())


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

    def start(
        config: EmulatorConfig, wrap: Callable[[AsgiApp], Any] | None = None
    ) -> RunningEmulator:
        """``wrap``: an ASGI app around the emulator's (e.g. one that records what arrives)."""
        sock = bind("127.0.0.1", 0)
        port = sock.getsockname()[1]
        emulator = Emulator(config).start()
        app = AsgiApp(emulator)
        server = uvicorn.Server(
            uvicorn.Config(app if wrap is None else wrap(app), log_level="warning", lifespan="off")
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
    """An emulator on a fresh file:// store with a fast background indexer (an operator's
    indexer fleet: the real server has none, but plans that wait for the index need one)."""
    return serve_emulator(
        EmulatorConfig(
            store_url=(tmp_path / "store").as_uri(), indexer="background", index_interval=0.02
        )
    )


@pytest.fixture(autouse=True)
def _secrets_stay_with_their_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets a test's plans register (process-wide, as in a CLI process) are forgotten after
    it, so they cannot redact another test's expected output."""
    from elax_plan.spec import secrets

    monkeypatch.setattr(secrets, "_registered", set(secrets._registered))
    monkeypatch.setattr(secrets, "_pattern", secrets._pattern)
