"""Ctrl-C against a frozen target: apply stops within seconds, not after target.timeout.

The target is a real TCP server that accepts connections and never answers (or answers
only ``GET /metrics``, so that the run gets as far as its writes); ``apply`` runs in a
subprocess with ``target.timeout: 60s`` and is sent SIGINT once or twice.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apply.support import make_dataset, write_plan
from tests.conftest import wait_until

# Far below target.timeout (60 s): an apply that waited for a hanging request would miss it.
EXIT_WITHIN_S = 15.0


class FrozenServer:
    """Accepts connections and never answers; with ``answer_metrics`` it answers
    ``GET /metrics`` (so a plan finds the target reachable) and the probe's queries, and freezes
    on anything else."""

    def __init__(self, *, answer_metrics: bool) -> None:
        self.answer_metrics = answer_metrics
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[str] = []  # request lines received, frozen or answered
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if not self.answer_metrics:
            return  # never read, never answer
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode()
                self.requests.append(line)
                length = next(
                    (
                        int(h.split(b":", 1)[1])
                        for h in head.split(b"\r\n")[1:]
                        if h.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(buffer) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                buffer = buffer[length:]
                if line.startswith("GET /metrics"):
                    body = b"# elacsym\n"
                elif line.startswith("POST") and "/query " in line:
                    body = b'{"hits":[]}'  # plan's capability probe: an ac782e1 answer
                else:
                    return  # frozen: the connection stays open, nothing is answered
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
        except OSError:
            return

    def close(self) -> None:
        self._closed.set()
        self.sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def frozen() -> Iterator[type[FrozenServer]]:
    """Factory for frozen servers, all closed after the test."""
    made: list[FrozenServer] = []

    class Made(FrozenServer):
        def __init__(self, *, answer_metrics: bool) -> None:
            super().__init__(answer_metrics=answer_metrics)
            made.append(self)

    yield Made
    for server in made:
        server.close()


def _plan(tmp_path: Path, url: str) -> Path:
    make_dataset(tmp_path / "src", files=2, rows=50)
    return write_plan(
        tmp_path / "plan.yaml",
        url=url,
        store=(tmp_path / "store").as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        target_extra="  timeout: 60s\n",
        extra="ingest:\n  retry:\n    attempts: 2\n",
    )


def _start(plan: Path, stderr: Path) -> subprocess.Popen[str]:
    """``apply PLAN --auto-approve`` in a subprocess; its stderr goes to the file ``stderr``."""
    with stderr.open("w") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "elax_plan",
                "apply",
                str(plan),
                "--auto-approve",
                "--no-progress",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
        )


def _exit_code(proc: subprocess.Popen[str]) -> int:
    """The exit code, once the process has ended; fails if it runs past EXIT_WITHIN_S."""
    try:
        return proc.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"apply was still running {EXIT_WITHIN_S:g}s after Ctrl-C")


def test_ctrl_c_while_a_write_hangs_stops_saves_and_releases(
    tmp_path: Path, frozen: type[FrozenServer]
) -> None:
    """One SIGINT while a write hangs: exit 130 long before target.timeout, lease released."""
    server = frozen(answer_metrics=True)
    plan = _plan(tmp_path, server.url)
    stderr = tmp_path / "stderr.txt"
    proc = _start(plan, stderr)
    try:
        wait_until(
            lambda: (
                any(r.startswith("POST") and "/query " not in r for r in server.requests)
                or proc.poll() is not None
            ),
            what="a write to reach the frozen target",
        )
        assert proc.poll() is None, stderr.read_text()
        proc.send_signal(signal.SIGINT)
        code = _exit_code(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = stderr.read_text()
    assert code == 130, err
    assert "checkpoint is saved" in err and "elax-plan apply" in err, err
    assert not (tmp_path / "state" / "backfill" / "lock.json").exists(), "the lease is released"
    assert not (tmp_path / "state" / "namespaces" / "docs.lock").exists(), "and the namespace's"
    ledger = (tmp_path / "state" / "backfill" / "state.json").read_text()
    assert '"pending"' in ledger or '"partial"' in ledger, "nothing was acknowledged"


def test_ctrl_c_while_the_plan_reads_a_frozen_target_exits_saying_what_is_left(
    tmp_path: Path, frozen: type[FrozenServer]
) -> None:
    """One SIGINT while GET /metrics hangs: exit 130 in seconds, saying nothing was written."""
    server = frozen(answer_metrics=False)
    plan = _plan(tmp_path, server.url)
    stderr = tmp_path / "stderr.txt"
    proc = _start(plan, stderr)
    try:
        wait_until(lambda: server.accepted > 0 or proc.poll() is not None, what="a connection")
        assert proc.poll() is None, stderr.read_text()
        proc.send_signal(signal.SIGINT)
        code = _exit_code(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = stderr.read_text()
    assert code == 130, err
    assert "Nothing was written in this run" in err and "elax-plan apply" in err, err


def test_a_second_ctrl_c_exits_at_once_saying_what_state_is_left(
    tmp_path: Path, frozen: type[FrozenServer]
) -> None:
    """A second SIGINT while the first waits on a hanging request: exit 130 at once, with
    what is left (no checkpoint lost, the lease taken over by the next apply here)."""
    server = frozen(answer_metrics=False)
    plan = _plan(tmp_path, server.url)
    stderr = tmp_path / "stderr.txt"
    proc = _start(plan, stderr)
    try:
        wait_until(lambda: server.accepted > 0 or proc.poll() is not None, what="a connection")
        assert proc.poll() is None, stderr.read_text()
        proc.send_signal(signal.SIGINT)
        wait_until(lambda: "Stopping" in stderr.read_text(), what="the first Ctrl-C's message")
        proc.send_signal(signal.SIGINT)
        code = _exit_code(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = stderr.read_text()
    assert code == 130, err
    assert "Interrupted again" in err, err
    assert "lock.json" in err and "namespaces/docs.lock" in err, err
    assert "takes them over" in err and "elax-plan apply" in err, err
    # The next apply takes the left lease over at once (its holder is gone) and gets as far
    # as the frozen target again: it is not refused for a held lease.
    again = _start(plan, tmp_path / "again.txt")
    wait_until(
        lambda: server.accepted > 1 or again.poll() is not None, what="the next apply to connect"
    )
    again.kill()
    again.wait()
    again_err = (tmp_path / "again.txt").read_text()
    assert "locked by another run" not in again_err and "being written by" not in again_err
