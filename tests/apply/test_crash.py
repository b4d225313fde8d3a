"""Crash safety: `kill -9` apply at random moments, re-run it, and end with the exact dataset.

Ten trials by default; `make soak` runs 50 (``ELAX_CRASH_TRIALS``). Each trial
kills the apply process once a randomly chosen number of WAL batches has
landed (so during writes, throttle pauses under a slow indexer, and ledger
writes alike), then re-runs apply to completion and checks the namespace's
documents id by id and that the ledger says done. Every third trial's server
also sets ``wal_highwater`` back once after a random write (hazard H2), so a
later write overwrites an acknowledged batch — before or after the kill: the
run that finds it says so (exit 1) and the next one re-sends the lost rows.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from elax_plan.emulator import EmulatorConfig
from tests.apply.support import (
    Dataset,
    assert_exact,
    make_dataset,
    run_cli,
    wal_count,
    write_plan,
)
from tests.conftest import RunningEmulator

TRIALS = int(os.environ.get("ELAX_CRASH_TRIALS", "10"))


def test_kill_9_at_random_moments_then_resume(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """Every trial ends with exactly the source documents and a ledger that says done."""
    large = make_dataset(tmp_path / "src", files=3, rows=300, dims=8, seed=11)
    # Files smaller than a chunk share requests (listed first: the first WAL batches), so kills
    # also land between the checkpoints of files written together.
    tiny = make_dataset(
        tmp_path / "src", files=24, rows=3, dims=8, seed=12, start_id=10_000, prefix="mini"
    )
    data = Dataset(large.files + tiny.files, {**large.docs, **tiny.docs})
    rng = random.Random(2026)
    killed_mid_run = 0
    for trial in range(TRIALS):
        root = tmp_path / f"t{trial}"
        store = root / "store"
        slow = trial % 2 == 1  # odd trials run against a slow indexer: kills land in pauses
        regress = rng.randint(2, 40) if trial % 3 == 2 else None
        emu = serve_emulator(
            EmulatorConfig(
                store.as_uri(),
                indexer="background",
                index_interval=0.01,
                index_rows_per_s=4000 if slow else None,
                regress_highwater_after=regress,
            )
        )
        plan = write_plan(
            root / "plan.yaml",
            url=emu.url,
            store=store.as_uri(),
            source=f"{tmp_path / 'src'}/*.ndjson",
            state=(root / "state").as_uri(),
            extra="ingest:\n  chunk_bytes: 2KiB\n  concurrency: 2\n"
            "throttle:\n  max_wal_lag: 6\n  resume_wal_lag: 2\n  poll_interval: 10ms\n",
            # The emulator serialises appends unless --race-appends (H1 is tested elsewhere).
            target_extra="  serialises_appends: true\n",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "elax_plan", "apply", str(plan), "--auto-approve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        kill_at = rng.randint(1, 60)
        deadline = time.monotonic() + 60
        while proc.poll() is None and wal_count(store) < kill_at:
            assert time.monotonic() < deadline, "apply made no progress"
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid_run += 1
        proc.wait(30)
        done = run_cli("apply", str(plan), "--auto-approve")
        for _ in range(2):  # a run that finds lost rows says so; the next re-sends them
            if done.returncode != 1 or regress is None:
                break
            assert "no longer holds rows" in done.stderr or "overwritten" in done.stderr, (
                f"trial {trial}: {done.stderr}"
            )
            done = run_cli("apply", str(plan), "--auto-approve")
        assert done.returncode == 0, f"trial {trial} (regress {regress}): {done.stderr}"
        assert_exact(store, "docs", data)
        ledger = json.loads((root / "state" / "backfill" / "state.json").read_text())
        assert {f["status"] for f in ledger["files"].values()} == {"done"}, trial
        assert ledger["run"]["current_run_id"] is None
        assert ledger["run"]["verification"]["status"] == "passed"
    assert killed_mid_run >= TRIALS // 2, "most kills should land while apply was running"
