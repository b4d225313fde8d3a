"""Crash safety beside live traffic: `kill -9` apply while another writer races its appends.

The live-traffic case of hazard H1 (``test_live_traffic``) and the kill -9 soak
(``test_crash``) together. Each trial's server appends without a lock, as the real node
does (``race_appends``, the seeded "real" race model: overwritten, torn, or 500-after-write
appends); a second writer posts other documents (``live-N`` ids, never a source id) into
the same namespace, at one of three paces in turn, from before the first apply until after the
last. apply (concurrency 1) is killed with SIGKILL as soon as the server has answered a
random number of its writes (``KillAtWrite``): mostly mid-writes, before or after a
checkpoint, sometimes right after its last write (in the delivery proof, a re-send or the
verification), sometimes not at all (it had finished). Then it runs again until it ends:
exit 0, or exit 3 when racing appends tore a WAL object and the one failed check is
``wal_replayable``, naming torn objects. A run that finds rows kept being lost may exit 1;
the next one re-sends them (``RERUNS`` runs at most).

Each trial then shows: every source document is in the namespace with its exact
attributes and vector (the WAL read back, last write wins, id by id); every file in the
ledger is done; and every overwritten write a finished run's summary lists was re-sent in
that run (a killed run leaves no summary; the run after it lists what its start proof
found). Ten trials by default; ``make soak`` runs 50 (``ELAX_CRASH_TRIALS``).

``test_a_torn_object_among_a_killed_runs_unrecorded_writes_fails_verification`` pins down
what the soak found first: a torn WAL object among writes no ledger named went unreported.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import (
    Dataset,
    make_dataset,
    run_cli,
    run_dirs,
    torn_objects,
    wal_count,
    wal_documents,
    write_plan,
)
from tests.conftest import RunningEmulator

TRIALS = int(os.environ.get("ELAX_CRASH_TRIALS", "10"))
RERUNS = 4  # applies after the kill: a run that exits 1 (rows kept being lost) gets another
# Seconds between the application's writes, in turn per trial: at the fastest nearly every
# run loses acknowledged writes and has a WAL object torn; at the slowest many lose none.
LIVE_INTERVALS_S = (0.005, 0.02, 0.05)
POLL_S = 0.003
LIVE_HEADER = b"x-live-traffic"


class LiveWriter:
    """The application's steady traffic: one small write every ``interval`` seconds, ids
    ``live-N``, until stopped; counts the writes the server answered 200."""

    def __init__(self, url: str, interval: float) -> None:
        self.url, self.interval = url, interval
        self.acked = 0
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LiveWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        headers = {LIVE_HEADER.decode(): "1"}
        with httpx.Client(base_url=self.url, timeout=10, headers=headers) as client:
            while not self._stop.wait(self.interval):
                body = {
                    "upserts": [{"id": f"live-{self.sent}", "vector": [0.5] * 8, "attributes": {}}]
                }
                self.sent += 1
                with contextlib.suppress(httpx.HTTPError):  # the application's, not the backfill's
                    if client.post("/v2/namespaces/docs", json=body).status_code == 200:
                        self.acked += 1


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


def _apply_until_done(plan: Path, trial: int) -> subprocess.CompletedProcess[str]:
    """Re-run apply until it ends (0, or 3); an exit 1 must be about lost rows."""
    for _ in range(RERUNS):
        done = run_cli("apply", str(plan), "--auto-approve", timeout=120)
        if done.returncode != 1:
            break
        assert "losing rows" in done.stderr or "overwritten" in done.stderr, (
            f"trial {trial}: {done.stderr}"
        )
    assert done.returncode in (0, 3), f"trial {trial}: exit {done.returncode}\n{done.stderr}"
    return done


def _records(state: Path) -> list[dict[str, Any]]:
    """Every run's record that was written (a killed run leaves none), oldest first."""
    return [
        orjson.loads((r / "summary.json").read_bytes())
        for r in run_dirs(state)
        if (r / "summary.json").exists()
    ]


def _check_trial(root: Path, data: Dataset, exit_code: int, trial: int) -> int:
    """What must hold after every trial; returns how many overwritten writes were listed."""
    node, state = root / "node", root / "state"
    records = _records(state)
    final = records[-1]
    failed = [c["key"] for c in final["verification"] if not c["passed"]]
    torn = torn_objects(node, "docs")
    if exit_code == 3:
        # Racing appends tore a WAL object (the application's or a write since re-sent): the
        # rows are all written, but the node could not replay the namespace after a restart.
        assert failed == ["wal_replayable"], (trial, failed)
        replayable = next(c for c in final["verification"] if c["key"] == "wal_replayable")
        assert torn and set(replayable["evidence"]["torn"]) <= torn, (trial, torn)
    else:
        assert not failed and not torn, (trial, failed, torn)
    docs = wal_documents(node, "docs", skip_torn=True)
    for doc_id, (vector, attributes) in data.docs.items():
        assert doc_id in docs, f"trial {trial}: source document {doc_id} is not in the namespace"
        got_vector, got_attributes = docs[doc_id]
        assert got_attributes == attributes, (trial, doc_id)
        assert len(got_vector) == len(vector), (trial, doc_id)
        assert np.array_equal(
            np.asarray(got_vector, dtype=np.float32), np.asarray(vector, dtype=np.float32)
        ), (trial, doc_id)
    ledger = json.loads((state / "backfill" / "state.json").read_text())
    assert {f["status"] for f in ledger["files"].values()} == {"done"}, trial
    assert ledger["run"]["current_run_id"] is None, trial
    # A run that finished lists each acknowledged write the WAL lost, and re-sent its file in
    # the same run; a run that gave up (exit 1) left those files to the next run's plan.
    listed = 0
    for record in records:
        overwritten = {o["file"] for o in record["delivery"]["overwritten"]}
        listed += len(record["delivery"]["overwritten"])
        if record["outcome"] == "failed":
            continue
        resent = {f for r in record["delivery"]["resent"] for f in r["files"]}
        assert overwritten <= resent, (trial, record["run_id"], overwritten - resent)
    return listed


def test_kill_9_beside_live_writes_then_resume(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """Every trial ends with every source document, exact, beside the live writer's; most
    kills land mid-run, and some trials see acknowledged writes lost and written again."""
    data = make_dataset(tmp_path / "src", files=2, rows=150, dims=8, seed=21)
    rng = random.Random(2027)
    killed_mid_run = 0
    overwritten = 0
    for trial in range(TRIALS):
        root = tmp_path / f"t{trial}"
        killer = KillAtWrite()
        emu = serve_emulator(
            EmulatorConfig(
                data_root=str(root / "node"),
                indexer="none",
                race_appends=True,
                seed=rng.randint(0, 2**31),
            ),
            wrap=killer.around,
        )
        plan = write_plan(
            root / "plan.yaml",
            url=emu.url,
            store=(root / "node").as_uri(),
            source=f"{tmp_path / 'src'}/*.ndjson",
            state=(root / "state").as_uri(),
            extra="ingest:\n  chunk_bytes: 2KiB\n  concurrency: 1\n"
            "  retry: {attempts: 20, initial: 5ms, max: 50ms}\nindexer:\n  mode: none\n",
            # The application writes the same metric; the plan says so (it has no record).
            target_extra="  assume_existing_metric: cosine\n",
        )
        with LiveWriter(emu.url, LIVE_INTERVALS_S[trial % len(LIVE_INTERVALS_S)]) as live:
            deadline = time.monotonic() + 10
            while live.acked == 0:  # the application's namespace exists before the backfill
                assert time.monotonic() < deadline, "the live writer wrote nothing"
                time.sleep(POLL_S)
            proc = subprocess.Popen(
                [sys.executable, "-m", "elax_plan", "apply", str(plan), "--auto-approve"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
            # 22 batches of ~14 rows and some re-sent: a few kills land right after the last
            # write (delivery proof, verification), a few after the run ended.
            killer.arm(proc.pid, rng.randint(1, 26))
            proc.wait(60)
            killer.disarm()
            killed_mid_run += proc.returncode == -signal.SIGKILL
            done = _apply_until_done(plan, trial)
        assert live.acked > 0
        overwritten += _check_trial(root, data, done.returncode, trial)
    assert killed_mid_run >= TRIALS // 2, "most kills should land while apply was running"
    assert overwritten > 0, "no acknowledged write was lost in any trial: no race"


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
