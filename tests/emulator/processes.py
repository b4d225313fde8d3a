"""Real `elax-plan emulator` processes for tests: the server, and `emulator compact` runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson


class EmulatorProcess:
    """`python -m elax_plan emulator …` with its announced URL."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "elax_plan", "emulator", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line: list[str] = []
        stdout = self.proc.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: line.append(stdout.readline()))
        reader.start()
        reader.join(60)
        if not (line and line[0]):
            stderr = self.proc.stderr.read() if self.proc.poll() is not None else ""  # type: ignore[union-attr]
            raise AssertionError(f"no listening line; stderr: {stderr}")
        self.line = line[0].strip()
        self.stderr = ""
        self.url = self.line.split(" listening on ", 1)[1].split(" ", 1)[0]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``, wait for the exit, keep stderr, and return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        _, self.stderr = self.proc.communicate(timeout=30)
        return self.proc.returncode


def stop_all(started: list[EmulatorProcess]) -> None:
    """Kill any process still running and reap them all."""
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
        p.proc.communicate(timeout=30)


def run_compact(data_root: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`elax-plan emulator compact --data-root DIR NAMESPACE` as a process of its own."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "elax_plan",
            "emulator",
            "compact",
            "--data-root",
            str(data_root),
            *args,
            namespace,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def read_router(data_root: Path, namespace: str) -> dict[str, object]:
    """router.json of ``namespace`` under ``data_root``, parsed."""
    raw = (data_root / "namespaces" / namespace / "router.json").read_bytes()
    out: dict[str, object] = orjson.loads(raw)
    return out


def wal_path(data_root: Path, namespace: str, seq: int) -> Path:
    return data_root / "namespaces" / namespace / "wal" / f"WAL-{seq:020}.json"
