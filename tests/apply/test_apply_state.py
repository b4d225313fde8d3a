"""Apply and the plan's state: the lease between two appliers, unlock, saved plans, bad rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from elax_plan.state import Holder, acquire, open_backend
from tests.apply.conftest import Setup
from tests.apply.support import assert_exact, make_dataset, run_cli
from tests.conftest import wait_until


def start_apply(plan: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "elax_plan", "apply", str(plan), "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


def test_second_apply_is_refused_naming_the_holder_and_lock_id(
    setup: Setup, tmp_path: Path
) -> None:
    """While one apply holds the lease, another exits 1 with holder and lock id; one writes."""
    emu, plan, data = setup(
        indexer="none",
        # Small chunks: several writes, so the first apply is held: no indexer runs.
        extra="ingest:\n  chunk_bytes: 4KiB\n"
        "throttle:\n  max_wal_lag: 1\n  resume_wal_lag: 0\n  stall_timeout: 1h\n",
    )
    first = start_apply(plan)
    lock = tmp_path / "state" / "backfill" / "lock.json"
    try:
        wait_for(lock)
        second = run_cli("apply", str(plan), "--auto-approve")
        assert second.returncode == 1
        info = json.loads(lock.read_text())
        assert info["lock_id"] in second.stderr
        assert str(first.pid) in second.stderr
        assert "elax-plan unlock" in second.stderr
        # the refused apply wrote nothing: only the holder's lineage/serial exist
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "resume" in err
    assert not lock.exists(), "the lease is released on SIGTERM"
    emu.emulator.indexer.start()  # the operator's indexer fleet comes up
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_exact(tmp_path / "store", "docs", data)


def test_lease_of_a_killed_apply_is_taken_over_at_once(setup: Setup, tmp_path: Path) -> None:
    """kill -9 leaves lock.json behind; the next apply on this host takes it over immediately."""
    emu, plan, data = setup(
        indexer="none",
        # Small chunks: several writes, so the first apply is held: no indexer runs.
        extra="ingest:\n  chunk_bytes: 4KiB\n"
        "throttle:\n  max_wal_lag: 1\n  resume_wal_lag: 0\n  stall_timeout: 1h\n",
    )
    first = start_apply(plan)
    lock = tmp_path / "state" / "backfill" / "lock.json"
    wait_for(lock)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    assert lock.exists()
    emu.emulator.indexer.start()  # the operator's indexer fleet comes up
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert_exact(tmp_path / "store", "docs", data)


def test_unlock_refuses_a_wrong_id_and_releases_the_right_one(setup: Setup, tmp_path: Path) -> None:
    """`unlock` with the wrong lock id is refused without showing the right one (it says to
    run `status`); with the right one the plan is free again."""
    _, plan, _ = setup()
    lock = tmp_path / "state" / "backfill" / "lock.json"
    # A lease held by a process on another host: taken over only by expiry, never by pid.
    backend = open_backend((tmp_path / "state").as_uri())
    held = acquire(backend, "backfill", holder=Holder(host="elsewhere", pid=4242, user="ops"))
    lock_id = held.lock_id
    refused = run_cli("apply", str(plan), "--auto-approve")
    if refused.returncode != 1 or lock_id not in refused.stderr:
        pytest.fail(f"expected a held lease: {refused.stderr}")
    wrong = run_cli("unlock", str(plan), "00000000-0000-0000-0000-000000000000")
    assert wrong.returncode == 1
    assert lock_id not in wrong.stderr and f"elax-plan status {plan}" in wrong.stderr
    right = run_cli("unlock", str(plan), lock_id)
    assert right.returncode == 0, right.stderr
    assert not lock.exists()


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_bad_rows(setup: Setup, tmp_path: Path, mode: str) -> None:
    """Malformed JSON, missing id, wrong dims, NaN, 1e39, oversized row: fail stops at
    FILE:LINE; skip writes every one to rejects.ndjson with its reason and the rest lands."""
    extra = "ingest:\n  chunk_bytes: 4KiB\n" + (
        "  on_invalid_row: skip\n  max_invalid_rows: 10\n" if mode == "skip" else ""
    )
    _, plan, data = setup(extra=extra, target_extra="  max_request_bytes: 8KiB\n")
    bad = tmp_path / "src" / "part-000.ndjson"
    lines = bad.read_bytes().splitlines()
    good_vec = "[" + ",".join(["0.5"] * 8) + "]"
    injected = [
        b'{"id": 9001, "vector": [0.1,',
        b'{"vector": ' + good_vec.encode() + b"}",
        b'{"id": 9003, "vector": [0.1, 0.2]}',
        b'{"id": 9004, "vector": [NaN, 0, 0, 0, 0, 0, 0, 0]}',
        b'{"id": 9005, "vector": [1e39, 0, 0, 0, 0, 0, 0, 0]}',
        b'{"id": 9006, "vector": ' + good_vec.encode() + b', "title": "' + b"x" * 10000 + b'"}',
    ]
    bad.write_bytes(b"\n".join(lines[:5] + injected + lines[5:]) + b"\n")
    done = run_cli("apply", str(plan), "--auto-approve")
    if mode == "fail":
        assert done.returncode == 1
        assert f"{bad.as_uri()}:6:" in done.stderr or f"{bad}:6:" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        return
    assert done.returncode == 0, done.stderr
    rejects_files = list((tmp_path / "state" / "backfill" / "runs").glob("*/rejects.ndjson"))
    assert rejects_files
    rejects = [orjson.loads(x) for f in rejects_files for x in f.read_bytes().splitlines() if x]
    assert sorted(r["line"] for r in rejects) == [6, 7, 8, 9, 10, 11]
    reasons = " | ".join(r["reason"] for r in rejects)
    for word in ("id is missing", "expected 8", "max_request_bytes"):
        assert word in reasons, reasons
    assert "6 row(s) skipped" in done.stdout
    assert_exact(tmp_path / "store", "docs", data)


def test_saved_plan_applies_without_prompt_and_is_refused_when_stale(
    setup: Setup, tmp_path: Path
) -> None:
    """A fresh saved plan applies as is; a changed plan file, source file or ledger is named."""
    _, plan, data = setup()
    saved = tmp_path / "saved.elaxplan"
    made = run_cli("plan", str(plan), "--out", str(saved))
    assert made.returncode == 0, made.stderr
    # 1. source file changed
    src = tmp_path / "src" / "part-001.ndjson"
    original = src.read_bytes()
    src.write_bytes(original + b"\n")
    os.utime(src, (time.time() + 5, time.time() + 5))
    stale = run_cli("apply", str(saved))
    assert stale.returncode == 1
    assert "Saved plan is stale" in stale.stderr and "part-001.ndjson changed" in stale.stderr
    src.write_bytes(original)
    os.utime(src, (time.time() + 10, time.time() + 10))
    run_cli("plan", str(plan), "--out", str(saved))
    # 2. plan file changed
    text = plan.read_text()
    plan.write_text(text + "\n# reviewed\n")
    stale = run_cli("apply", str(saved))
    assert stale.returncode == 1 and "the plan file changed" in stale.stderr
    plan.write_text(text)
    # 3. ledger changed (another apply ran in between)
    run_cli("plan", str(plan), "--out", str(saved))
    first = run_cli("apply", str(plan), "--auto-approve")
    assert first.returncode == 0, first.stderr
    stale = run_cli("apply", str(saved))
    assert stale.returncode == 1 and "state ledger" in stale.stderr
    # a fresh one applies without a prompt (stdin is not a terminal)
    fresh = run_cli("plan", str(plan), "--out", str(saved))
    assert fresh.returncode == 0
    applied = run_cli("apply", str(saved))
    assert applied.returncode == 0, applied.stderr
    assert_exact(tmp_path / "store", "docs", data)


def test_status_names_the_lease_holder_and_its_lock_id_once(setup: Setup, tmp_path: Path) -> None:
    """`status` with a held lease shows its holder, operation and lock id, the id once."""
    _, plan, _ = setup()
    backend = open_backend((tmp_path / "state").as_uri())
    held = acquire(backend, "backfill", holder=Holder(host="elsewhere", pid=4242, user="ops"))
    shown = run_cli("status", str(plan))
    assert shown.returncode == 0, shown.stderr
    assert "lease: held" in shown.stdout and "user ops on host elsewhere" in shown.stdout
    assert shown.stdout.count(held.lock_id) == 1, shown.stdout


def test_status_counts_one_row_as_one_row(setup: Setup, tmp_path: Path) -> None:
    """`status` after a one-row source says "1 row", not "1 rows"."""
    _, plan, _ = setup(dataset=make_dataset(tmp_path / "src", files=1, rows=1))
    applied = run_cli("apply", str(plan), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    shown = run_cli("status", str(plan))
    assert "1 done, 0 partial, 0 pending; 1 row," in shown.stdout, shown.stdout


def test_a_corrupt_lock_file_is_cleared_with_unlock_corrupt(setup: Setup, tmp_path: Path) -> None:
    """A lock.json that is no lease: status and apply say to run `unlock PLAN corrupt`; a lock
    id is refused; `unlock PLAN corrupt` removes it and apply runs."""
    _, plan, data = setup()
    lock = tmp_path / "state" / "backfill" / "lock.json"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(b'{"lock_version": 1, "lock_id": "cut sh')
    command = f"elax-plan unlock {plan} corrupt"
    status = run_cli("status", str(plan))
    assert status.returncode == 0, status.stderr
    assert "lock.json is corrupt" in status.stdout and command in status.stdout, status.stdout
    refused = run_cli("apply", str(plan), "--auto-approve")
    assert refused.returncode == 1 and command in refused.stderr, refused.stderr
    wrong = run_cli("unlock", str(plan), "00000000-0000-0000-0000-000000000000")
    assert wrong.returncode == 1 and command in wrong.stderr, wrong.stderr
    assert lock.exists()
    cleared = run_cli("unlock", str(plan), "corrupt")
    assert cleared.returncode == 0, cleared.stderr
    assert "Removed the corrupt lease" in cleared.stdout
    assert not lock.exists()
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert_exact(tmp_path / "store", "docs", data)


def _apply_waiting(plan: Path, lock_timeout: str, stderr: Path) -> subprocess.Popen[str]:
    """``apply PLAN --auto-approve --lock-timeout T`` in a subprocess; stderr to a file."""
    with stderr.open("w") as err:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "elax_plan", "apply", str(plan), "--auto-approve"),
                *("--lock-timeout", lock_timeout),
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
        )


def test_lock_timeout_says_whose_lease_it_waits_for_then_applies(
    setup: Setup, tmp_path: Path
) -> None:
    """--lock-timeout prints once whose lease it waits for; released meanwhile, apply runs."""
    _, plan, data = setup()
    backend = open_backend((tmp_path / "state").as_uri())
    held = acquire(backend, "backfill", holder=Holder(host="elsewhere", pid=4242, user="ops"))
    stderr = tmp_path / "stderr.txt"
    proc = _apply_waiting(plan, "1m", stderr)
    try:
        wait_until(
            lambda: "Waiting up to 1m" in stderr.read_text() or proc.poll() is not None,
            what="the waiting message",
        )
        err = stderr.read_text()
        assert "Waiting up to 1m for the lease held by user ops on host elsewhere" in err, err
        assert f"lock id {held.lock_id}, apply, since " in err, err
        assert held.release()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = stderr.read_text()
    assert code == 0, err
    assert err.count("Waiting up to") == 1, err
    assert_exact(tmp_path / "store", "docs", data)


def test_lock_timeout_gives_up_naming_the_holder(setup: Setup, tmp_path: Path) -> None:
    """A lease never released: after --lock-timeout apply exits 1 naming its holder."""
    _, plan, _ = setup()
    backend = open_backend((tmp_path / "state").as_uri())
    held = acquire(backend, "backfill", holder=Holder(host="elsewhere", pid=4242, user="ops"))
    done = run_cli("apply", str(plan), "--auto-approve", "--lock-timeout", "2s")
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("Waiting up to 2s for the lease held by user ops") == 1, done.stderr
    error = next(line for line in done.stderr.splitlines() if line.startswith("Error:"))
    assert "locked by another run after waiting 2s" in error, error
    assert "user ops on host elsewhere (pid 4242)" in error and held.lock_id in error, error
    assert not (tmp_path / "store" / "namespaces").exists(), "nothing was written"


# Small chunks and a lag limit of 1: with no indexer, a first apply pauses after its first
# writes and holds the plan's lease until the test releases it.
HOLDING = (
    "ingest:\n  chunk_bytes: 4KiB\n"
    "throttle:\n  max_wal_lag: 1\n  resume_wal_lag: 0\n  stall_timeout: 1h\n  poll_interval: 50ms\n"
)


def test_lock_timeout_waits_for_a_running_apply_and_resumes_its_plan(
    setup: Setup, tmp_path: Path
) -> None:
    """A second apply with --lock-timeout, started while a first apply of the same plan holds
    its lease, waits (naming that process), takes the lease once the first stops on SIGTERM
    within the timeout, and finishes the plan: exit 0, the namespace exact."""
    emu, plan, data = setup(indexer="none", extra=HOLDING)
    lock = tmp_path / "state" / "backfill" / "lock.json"
    first = start_apply(plan)
    second: subprocess.Popen[str] | None = None
    stderr = tmp_path / "second.err"
    try:
        wait_for(lock)
        held = json.loads(lock.read_text())
        second = waiter = _apply_waiting(plan, "1m", stderr)
        wait_until(
            lambda: "Waiting up to 1m" in stderr.read_text() or waiter.poll() is not None,
            what="the second apply to wait",
        )
        said = stderr.read_text()
        assert second.poll() is None, said
        assert f"host {held['holder']['host']}, pid {first.pid} (lock id {held['lock_id']}" in said
        first.send_signal(signal.SIGTERM)
        _, first_err = first.communicate(timeout=30)
        assert first.returncode == 130, first_err
        emu.emulator.indexer.start()  # the second run must not stall on the first's lag
        code = second.wait(timeout=60)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
            if proc is not None:
                proc.communicate()  # reaped, and its pipes closed
    err = stderr.read_text()
    assert code == 0, err
    assert err.count("Waiting up to") == 1, err
    assert not lock.exists()
    assert_exact(tmp_path / "store", "docs", data)


def test_a_shorter_lock_timeout_gives_up_on_a_running_apply_naming_it(
    setup: Setup, tmp_path: Path
) -> None:
    """While a first apply holds the plan's lease past the second's --lock-timeout, the second
    waits that long, then exits 1 naming the first's host, pid and lock id; the first's lease
    is intact, and the first, let go, ends exact."""
    emu, plan, data = setup(indexer="none", extra=HOLDING)
    lock = tmp_path / "state" / "backfill" / "lock.json"
    first = start_apply(plan)
    try:
        wait_for(lock)
        held = json.loads(lock.read_text())
        started = time.monotonic()
        refused = run_cli("apply", str(plan), "--auto-approve", "--lock-timeout", "1s")
        waited = time.monotonic() - started
        assert refused.returncode == 1, refused.stderr
        assert waited >= 1.0, f"gave up after {waited:.2f}s"
        assert refused.stderr.count("Waiting up to 1s for the lease held by") == 1
        error = next(line for line in refused.stderr.splitlines() if line.startswith("Error:"))
        assert "locked by another run after waiting 1s" in error, error
        assert f"on host {held['holder']['host']} (pid {first.pid})" in error, error
        assert held["lock_id"] in error and "Traceback" not in refused.stderr, error
        assert json.loads(lock.read_text())["lock_id"] == held["lock_id"], "the lease is intact"
        emu.emulator.indexer.start()
        _, first_err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()  # reaped, and its pipes closed
    assert first.returncode == 0, first_err
    assert_exact(tmp_path / "store", "docs", data)
