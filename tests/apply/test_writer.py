"""The writer against a real emulator socket: retries, 413, terminal 4xx, stop."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from elax_plan.apply.http import parse_retry_after
from elax_plan.apply.writer import PayloadTooLarge, Writer
from elax_plan.emulator import EmulatorConfig
from elax_plan.errors import WriteRejected
from elax_plan.retry import Interrupted, RetryPolicy
from tests.conftest import RunningEmulator

FAST = RetryPolicy(attempts=50, initial=0.001, max=0.01)
BODY = b'{"upserts":[{"id":"a","vector":[1.0,2.0]}]}'


def test_acknowledged_write_returns_sequence(emu: RunningEmulator) -> None:
    """A 200 answer gives the wal_sequence."""
    writer = Writer(emu.client, "docs", FAST)
    assert [writer.send(BODY) for _ in range(3)] == [1, 2, 3]


def test_transient_failures_are_retried_and_reported(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """503 and 429 are retried until acknowledged; every retry is reported with its cause."""
    emu = serve_emulator(
        EmulatorConfig((tmp_path / "s").as_uri(), fail_rate=0.5, seed=3, retry_after_s=0)
    )
    retries: list[dict[str, Any]] = []
    writer = Writer(emu.client, "docs", FAST, on_retry=retries.append, rng=random.Random(1))
    seqs = [writer.send(BODY) for _ in range(20)]
    assert seqs == list(range(1, 21))
    assert retries, "fail_rate 0.5 over 20 writes produced no retry"
    assert {r["cause"] for r in retries} <= {"http_503", "http_429"}
    assert any(r["cause"] == "http_429" and r["retry_after_s"] == 0 for r in retries)


def test_connect_errors_are_retried_then_give_up() -> None:
    """A closed port is transient; after `attempts` tries the error names the cause."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    retries: list[dict[str, Any]] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
        writer = Writer(client, "docs", RetryPolicy(3, 0.001, 0.002), on_retry=retries.append)
        with pytest.raises(WriteRejected, match=r"failed 3 times.*ConnectError"):
            writer.send(BODY)
    assert [r["attempt"] for r in retries] == [1, 2]


def test_413_is_raised_for_the_caller_to_split(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """A body over the server's cap raises PayloadTooLarge, nothing else."""
    emu = serve_emulator(EmulatorConfig((tmp_path / "s").as_uri(), max_body_bytes=20))
    with pytest.raises(PayloadTooLarge):
        Writer(emu.client, "docs", FAST).send(BODY)


def test_other_4xx_is_terminal_with_the_server_text(emu: RunningEmulator) -> None:
    """A 422 is not retried; the error carries status and server message."""
    retries: list[dict[str, Any]] = []
    writer = Writer(emu.client, "docs", FAST, on_retry=retries.append)
    with pytest.raises(WriteRejected) as info:
        writer.send(b'{"upserts":[{"id":5}]}')
    assert info.value.status == 422
    assert "HTTP 422" in info.value.message and "expected a string" in info.value.message
    assert retries == []


def test_stop_interrupts_backoff(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """A set stop event ends the retry loop without another request."""
    emu = serve_emulator(EmulatorConfig((tmp_path / "s").as_uri(), fail_rate=1.0))
    stop = threading.Event()
    writer = Writer(
        emu.client, "docs", RetryPolicy(100, 10.0, 10.0), stop=stop, on_retry=lambda _: stop.set()
    )
    with pytest.raises(Interrupted):
        writer.send(BODY)


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    """Retry-After: delta-seconds, an HTTP date in the past (0 s), or garbage (None)."""
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
