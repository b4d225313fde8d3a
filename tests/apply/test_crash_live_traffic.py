"""A kill -9 that leaves writes no ledger names: verification still finds a torn WAL object.

apply killed before it checkpointed any write leaves WAL objects no ledger names; racing
appends (hazard H1) may have torn one. The run that resumes writes every row again, so no
row is lost, but a node replays the whole WAL at restart and would stop at the torn object:
``wal_replayable`` must look from where the killed run started writing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import make_dataset, run_cli, wal_count, wal_documents, write_plan
from tests.conftest import RunningEmulator

LIVE_HEADER = b"x-live-traffic"


class KillAtWrite:
    """In front of the emulator: SIGKILLs the armed process as soon as the server has answered
    the ``at``-th write since arming that is not the live writer's — once ``at`` of apply's
    WAL batches landed, exactly, however busy the machine (a poll of the WAL directory from
    the test's own threads would lag behind a fast apply)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.at = 0
        self.writes = 0

    def around(self, app: Any) -> KillAtWrite:
        self.app = app
        return self

    def arm(self, pid: int, at: int) -> None:
        self.pid, self.at, self.writes = pid, at, 0

    def disarm(self) -> None:
        self.pid = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/v2/namespaces/docs"
            and (LIVE_HEADER, b"1") not in scope["headers"]
            and self.pid is not None
        ):
            self.writes += 1
            if self.writes >= self.at:
                os.kill(self.pid, signal.SIGKILL)
                self.pid = None


def test_a_torn_object_among_a_killed_runs_unrecorded_writes_fails_verification(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """What the soak found: apply killed before it checkpointed any write leaves WAL objects
    no ledger names; racing appends may have torn one. The run that resumes writes every row
    again, but the node would fail to replay the namespace: verification must look from
    before the killed run's first write, not from the first write it knows of."""
    data = make_dataset(tmp_path / "src", files=1, rows=150, dims=8, seed=5)
    node, state = tmp_path / "node", tmp_path / "state"
    killer = KillAtWrite()
    emu = serve_emulator(EmulatorConfig(data_root=str(node), indexer="none"), wrap=killer.around)
    plan = write_plan(
        tmp_path / "plan.yaml",
        url=emu.url,
        store=node.as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=state.as_uri(),
        extra="ingest:\n  chunk_bytes: 2KiB\n  concurrency: 1\nindexer:\n  mode: none\n",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "elax_plan", "apply", str(plan), "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    killer.arm(proc.pid, 3)  # the third of ~11 writes: long before a checkpoint is due
    assert proc.wait(60) == -signal.SIGKILL
    killer.disarm()
    ledger = json.loads((state / "backfill" / "state.json").read_text())
    assert ledger["run"]["current_run_id"] is not None  # killed mid-run
    assert ledger["run"]["first_acked_wal_sequence"] is None  # no write checkpointed
    assert wal_count(node) >= 3
    wal = node / "namespaces" / "docs" / "wal" / "WAL-00000000000000000002.json"
    wal.write_bytes(wal.read_bytes()[:40])  # torn, as racing appends leave it
    done = run_cli("apply", str(plan), "--auto-approve")
    said = done.stdout + done.stderr
    assert done.returncode == 3, said
    assert "WAL-2 is not a readable WAL batch" in said
    docs = wal_documents(node, "docs", skip_torn=True)
    assert set(docs) == set(data.docs)  # every row was written again all the same
