"""User errors at the state location end in a one-paragraph StateError, never a traceback."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from elax_plan.errors import StateError
from elax_plan.spec.secrets import Secret
from elax_plan.state import acquire, open_backend
from tests.conftest import S3Server


def test_missing_bucket(s3_server: S3Server) -> None:
    """A state.uri naming a missing bucket says so, with the endpoint and what to fix."""
    backend = open_backend(
        f"s3://no-such-{uuid.uuid4().hex[:12]}/state", s3_server.storage_options()
    )
    with pytest.raises(StateError) as caught:
        acquire(backend, "p")
    message = str(caught.value)
    assert "does not exist" in message and s3_server.endpoint_url in message
    assert "Create the bucket" in message


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_endpoint_hides_credentials() -> None:
    """An unreachable S3 endpoint is named with what to check; credentials never appear."""
    key, secret = f"key-{uuid.uuid4().hex}", f"secret-{uuid.uuid4().hex}"
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    backend = open_backend(
        "s3://bucket/state",
        {
            "endpoint_url": endpoint,
            "key": Secret(key),
            "secret": Secret(secret),
            # One attempt per call keeps the test quick; s3fs still retries a few times.
            "config_kwargs": {"retries": {"max_attempts": 1}},
        },
    )
    with pytest.raises(StateError) as caught:
        backend.read("p/state.json")
    message = str(caught.value)
    assert "unreachable" in message and endpoint in message and "endpoint_url" in message
    assert key not in message and secret not in message


def test_secret_credentials_work_with_s3(s3_server: S3Server) -> None:
    """storage_options holding Secret values (as the plan loader makes them) are revealed to S3."""
    from tests.conftest import make_bucket

    bucket = make_bucket(s3_server)
    options = {
        "endpoint_url": s3_server.endpoint_url,
        "key": Secret(f"elax-key-{uuid.uuid4().hex}"),
        "secret": Secret(f"elax-secret-{uuid.uuid4().hex}"),
    }
    backend = open_backend(f"s3://{bucket}/state", options)
    backend.create("p/x.json", b"{}")
    assert backend.read("p/x.json") is not None


def test_unsupported_scheme() -> None:
    """A state.uri on a store without compare-and-swap support is refused up front."""
    with pytest.raises(StateError, match="no compare-and-swap support"):
        open_backend("gs://bucket/state")
    with pytest.raises(StateError, match="names no bucket"):
        open_backend("s3://")


def test_local_root_is_a_file(tmp_path: Path) -> None:
    """A file:// state.uri that points at a regular file fails with the path and what to check."""
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    backend = open_backend(blocker.as_uri())
    with pytest.raises(StateError) as caught:
        acquire(backend, "p")
    assert str(blocker) in str(caught.value) and "writable" in str(caught.value)


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    """Local writes go through temp files that never stay behind, and list() hides lock files."""
    backend = open_backend((tmp_path / "state").as_uri())
    version = backend.create("p/state.json", b"1")
    backend.replace("p/state.json", b"2", version)
    backend.put("p/runs/r/summary.md", b"x")
    backend.append_lines("p/runs/r/events.ndjson", [b"{}"])
    names = sorted(p.name for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert names == [
        ".elax-state.lock",
        ".elax-state.lock",
        "events.ndjson",
        "state.json",
        "summary.md",
    ]
    assert backend.list("p") == ["p/runs/r/events.ndjson", "p/runs/r/summary.md", "p/state.json"]
