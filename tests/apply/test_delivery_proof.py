"""A run proves its past: acknowledged writes the WAL lost are found, shown and re-sent."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elax_plan.emulator import EmulatorConfig
from elax_plan.live.delivery import ops_digest, wal_ops_digest
from elax_plan.live.snapshot import observe
from elax_plan.spec import load_plan
from elax_plan.state import open_backend
from tests.apply.conftest import Setup
from tests.apply.support import (
    assert_exact,
    check,
    last_record,
    make_dataset,
    run_cli,
    write_plan,
)
from tests.conftest import RunningEmulator, wait_until


def ledger(tmp_path: Path) -> dict[str, object]:
    return json.loads((tmp_path / "state" / "backfill" / "state.json").read_text())


def wal_file(tmp_path: Path, seq: int) -> Path:
    return tmp_path / "store" / "namespaces" / "docs" / "wal" / f"WAL-{seq:020d}.json"


def acked(tmp_path: Path) -> dict[str, list[list[object]]]:
    """Each file's acknowledged writes as the ledger on disk has them."""
    path = tmp_path / "state" / "backfill" / "state.json"
    if not path.exists():
        return {}
    try:
        files = json.loads(path.read_text())["files"]
    except json.JSONDecodeError:  # caught mid-replace
        return {}
    return {url: entry.get("acks", []) for url, entry in files.items()}


def test_the_digest_of_what_was_sent_matches_the_wal_batch(setup: Setup, tmp_path: Path) -> None:
    """ops_digest of the ids apply sent equals wal_ops_digest of the WAL file the server wrote."""
    emu, _, _ = setup()
    body = {"upserts": [{"id": "b", "vector": [1.5, 2]}, {"id": "a", "attributes": {"z": 1}}]}
    assert emu.write("docs", body).json()["wal_sequence"] == 1
    assert wal_ops_digest(wal_file(tmp_path, 1).read_bytes()) == ops_digest(["b", "a"])
    assert ops_digest(["a", "b"]) != ops_digest(["b", "a"])
    assert wal_ops_digest(b'{"namespace":"docs","operations":[{"op":"ups') is None


def test_killed_while_a_reused_sequence_write_is_in_flight(setup: Setup, tmp_path: Path) -> None:
    """File a is done at WAL-2; apply is killed while the next request is in the server, which
    reuses sequence 2 (wal_highwater went back) and overwrites a's rows. The next plan shows a
    as `>` with the reason, and the next apply re-sends it, its summary listing the lost write
    and the re-send: the namespace is exact."""
    data = make_dataset(tmp_path / "src", files=2, rows=20, dims=8)
    emu, plan, _ = setup(
        extra="ingest:\n  chunk_bytes: 2KiB\n",
        dataset=data,
        regress_highwater_after=2,
        latency=0.5,
    )
    a = data.files[0].as_uri()
    proc = subprocess.Popen(
        [sys.executable, "-m", "elax_plan", "apply", str(plan), "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: any(ack[0] == 2 for ack in acked(tmp_path).get(a, [])), what="WAL-2")
        # Killed while the third write is inside the server (its latency not over yet).
        wait_until(lambda: emu.emulator.metrics.received["write"] >= 3, what="a third write")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    a_entry = ledger(tmp_path)["files"][a]  # type: ignore[index]
    assert a_entry["status"] == "done", a_entry
    sent = next(ack[1] for ack in a_entry["acks"] if ack[0] == 2)
    # The request that was in flight lands after the kill and overwrites WAL-2.
    wait_until(
        lambda: wal_ops_digest(wal_file(tmp_path, 2).read_bytes()) not in (sent, None),
        what="the in-flight write to overwrite WAL-2",
    )
    planned = run_cli("--no-color", "plan", str(plan))
    assert planned.returncode == 0, planned.stderr
    [line] = [row for row in planned.stdout.splitlines() if str(data.files[0]) in row]
    assert line.lstrip().startswith(">"), planned.stdout
    assert "WAL-2 holds other operations than were sent" in planned.stdout
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_exact(tmp_path / "store", "docs", data)
    # The run's summary lists the write its start proof found lost, and its re-send.
    delivery = last_record(tmp_path / "state")["delivery"]
    assert [(o["file"], o["wal_sequence"]) for o in delivery["overwritten"]] == [(a, 2)]
    assert delivery["resent"] == [{"round": 0, "files": [a]}]
    again = run_cli("plan", str(plan))
    assert "No changes" in again.stdout, again.stdout


def test_a_highwater_below_an_acknowledged_write_is_never_written_over_blindly(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]
) -> None:
    """wal_highwater goes back below the last acknowledged write at the end of the writes:
    the proof finds the lost write, the run writes its rows again (a new WAL entry, not over
    the old one) and proves them; the summary lists it, and the next plan says No changes."""
    data = make_dataset(tmp_path / "src", files=1, rows=30, dims=8)

    def plan_for(folder: Path, **config: Any) -> Path:
        # The plan waits for the index: a background indexer stands in for the operator's.
        store = (folder / "store").as_uri()
        emu = serve_emulator(EmulatorConfig(store, indexer="background", **config))
        return write_plan(
            folder / "plan.yaml",
            url=emu.url,
            store=(folder / "store").as_uri(),
            source=f"{tmp_path / 'src'}/*.ndjson",
            state=(folder / "state").as_uri(),
            extra="ingest:\n  chunk_bytes: 2KiB\n",
        )

    # How many requests the plan takes: the same apply against a scratch emulator.
    probe = tmp_path / "probe"
    assert run_cli("apply", str(plan_for(probe)), "--auto-approve").returncode == 0
    requests = len(list((probe / "store" / "namespaces" / "docs" / "wal").glob("WAL-*.json")))
    assert requests >= 2
    # After the last write, the router goes back by one (a racing append's late update).
    plan = plan_for(tmp_path, regress_highwater_after=requests)
    first = run_cli("apply", str(plan), "--auto-approve")
    assert first.returncode == 0, first.stdout + first.stderr
    delivery = first.stdout.split("## Delivery", 1)[1].split("##", 1)[0]
    assert "The WAL lost 1 acknowledged write" in delivery
    assert f"router.json's wal_highwater is {requests - 1}" in delivery
    assert data.files[0].as_uri() in delivery
    assert_exact(tmp_path / "store", "docs", data)
    again = run_cli("plan", str(plan), "--detailed-exitcode")
    assert again.returncode == 0 and "No changes" in again.stdout, again.stdout


def test_a_torn_wal_file_is_lost_rows_and_a_proven_unchanged_one_is_not_read_again(
    setup: Setup, tmp_path: Path
) -> None:
    """After a finished run, plan reads no WAL object (all proven, unchanged); a torn WAL file
    makes its file `>` again, and apply repairs it."""
    _, plan, _ = setup(extra="ingest:\n  chunk_bytes: 2KiB\n")
    assert run_cli("apply", str(plan), "--auto-approve").returncode == 0
    spec = load_plan(plan, env={})
    backend = open_backend(spec.state.uri, {})
    snapshot = observe(spec, backend)
    assert snapshot.proof is not None and snapshot.proof.ok
    assert snapshot.proof.checked > 0 and snapshot.proof.read == 0
    wal = wal_file(tmp_path, 3)
    wal.write_bytes(wal.read_bytes()[:40])  # torn, as a racing append can leave it
    time.sleep(0.01)  # a new mtime even on coarse clocks
    snapshot = observe(spec, backend)
    assert snapshot.proof is not None and not snapshot.proof.ok
    [lost] = snapshot.proof.lost.values()
    assert lost.seq == 3 and "not a readable WAL batch" in lost.reason
    # The emulator holds the namespace in memory (a real node too, until it restarts), so
    # the rows are repaired by a plain apply; the proof, not the server, noticed the damage.
    # The torn object stays, and a restart would fail on it: verification says so (exit 3).
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "WAL-3 is not a readable WAL batch" in done.stdout + done.stderr
    planned_after = observe(spec, backend)
    assert planned_after.proof is not None and planned_after.proof.ok
    redone = ledger(tmp_path)["files"][lost.url]  # type: ignore[index]
    assert redone["status"] == "done"
    assert any(ack[0] > 3 for ack in redone["acks"]), "the lost rows were written again"


def test_a_torn_wal_object_fails_verification_though_its_rows_were_written_again(
    setup: Setup, tmp_path: Path
) -> None:
    """A WAL object torn after it was proven: apply writes its rows again (they are safe), but
    the node would fail to replay the namespace at its next restart, so verification fails
    (exit 3) naming the object — and keeps failing until the namespace is rebuilt."""
    _, plan, _ = setup(extra="ingest:\n  chunk_bytes: 2KiB\n")
    assert run_cli("apply", str(plan), "--auto-approve").returncode == 0
    wal = wal_file(tmp_path, 2)
    wal.write_bytes(wal.read_bytes()[:40])  # torn, as racing appends leave it
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 3, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "WAL-2 is not a readable WAL batch" in said
    assert "fail to load this namespace at its next restart" in said
    record = last_record(tmp_path / "state")
    verdict = check(record, "wal_replayable")
    assert not verdict["passed"] and verdict["evidence"]["torn"] == [2]
    # The proven objects of the first run were not read again: only the torn one and the
    # re-sent ones.
    assert verdict["evidence"]["read"] < verdict["evidence"]["objects"]
