"""``verify.delivery``: full, sample or off, and proofs while the writes still run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from elax_plan.apply.context import ApplyHooks, ApplyOptions
from elax_plan.apply.pipeline import PipelineStats
from elax_plan.apply.run import apply_plan
from elax_plan.apply.throttle import Throttle
from elax_plan.live.delivery import SAMPLE_EVERY, ops_digest, prove_delivery, sampled
from elax_plan.live.store import StoreReader
from elax_plan.spec import load_plan
from elax_plan.state import Ack
from tests.apply.conftest import Setup
from tests.apply.support import assert_exact, last_record, make_dataset, run_cli


def wal_path(store: Path, seq: int) -> Path:
    return store / "namespaces" / "docs" / "wal" / f"WAL-{seq:020d}.json"


def overwrite_with(store: Path, seq: int, ids_of: int) -> None:
    """Make ``WAL-<seq>`` hold the operations of ``WAL-<ids_of>``: another writer's batch."""
    batch = orjson.loads(wal_path(store, seq).read_bytes())
    batch["operations"] = orjson.loads(wal_path(store, ids_of).read_bytes())["operations"]
    wal_path(store, seq).write_bytes(orjson.dumps(batch))


def test_sample_reads_back_a_share_and_still_checks_every_write_is_listed(
    setup: Setup, tmp_path: Path
) -> None:
    """Of 40 overwritten writes a sampled proof finds exactly the sampled ones (by sequence,
    the same every time) and reads only those; a missing object is found either way."""
    emu, _, _ = setup(indexer="none")
    store = tmp_path / "store"
    acks = []
    for i in range(1, 41):
        seq = emu.write("docs", {"upserts": [{"id": f"d{i}", "vector": [1.0, 0.0]}]}).json()
        acks.append(Ack(seq["wal_sequence"], ops_digest([f"d{i}"]), {"offset": i}, 1))
    foreign = emu.write("docs", {"upserts": [{"id": "x", "vector": [0.0, 1.0]}]}).json()
    for ack in acks:
        overwrite_with(store, ack.seq, foreign["wal_sequence"])
    reader = StoreReader(store.as_uri(), {})
    chosen = {a.seq for a in acks if sampled(a.seq, SAMPLE_EVERY)}
    assert 0 < len(chosen) < 40
    # One file per write, so each lost write is its file's first.
    per_file = {f"f{a.seq}": [a] for a in acks}
    full = prove_delivery(reader, "docs", per_file)
    assert len(full.lost) == 40 and full.read == 40
    sample = prove_delivery(reader, "docs", per_file, sample_every=SAMPLE_EVERY)
    assert {w.seq for w in sample.lost.values()} == chosen and sample.read == len(chosen)
    assert not sample.proven, "a write that was not read back is not proven"
    unsampled = next(a.seq for a in acks if a.seq not in chosen)
    wal_path(store, unsampled).unlink()
    again = prove_delivery(reader, "docs", per_file, sample_every=SAMPLE_EVERY)
    assert {w.seq for w in again.lost.values()} == chosen | {unsampled}
    assert "missing from the WAL" in again.lost[f"f{unsampled}"].reason


def test_off_reads_nothing_back_and_the_plan_warns(setup: Setup, tmp_path: Path) -> None:
    """With delivery off, a WAL object overwritten after a finished run goes unnoticed (plan
    says No changes); with full, the same damage is a file to write again."""
    _, plan, data = setup(extra="ingest:\n  chunk_bytes: 2KiB\nverify:\n  delivery: off\n")
    shown = run_cli("plan", str(plan))
    assert "  delivery:     off: acknowledged writes are not read back" in shown.stdout
    assert "verify.delivery off: acknowledged writes are not read back" in shown.stdout
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert last_record(tmp_path / "state")["delivery"]["proofs"] == 0
    assert "Delivery proof is off (`verify.delivery: off`)" in done.stdout
    overwrite_with(tmp_path / "store", 3, ids_of=1)
    assert "No changes" in run_cli("plan", str(plan)).stdout
    plan.write_text(plan.read_text().replace("delivery: off", "delivery: full"))
    seen = run_cli("plan", str(plan), "--format", "json")
    doc = json.loads(seen.stdout)
    assert doc["delivery"] == {
        "mode": "full",
        "sample_every": 1,
        "detail": doc["delivery"]["detail"],
    }
    assert [f["action"] for f in doc["files"] if f["action"] != "skip"] == ["resume"], doc["files"]
    assert run_cli("apply", str(plan), "--auto-approve").returncode == 0
    assert_exact(tmp_path / "store", "docs", data)


def test_a_write_lost_mid_run_is_found_before_the_writes_end(setup: Setup, tmp_path: Path) -> None:
    """Another writer overwrites WAL-2 while the run still writes: a proof at a checkpoint
    reports it before the last write, and the run re-sends its rows and ends exact."""
    data = make_dataset(tmp_path / "src", files=1, rows=120, dims=8)
    _, plan, _ = setup(extra="ingest:\n  chunk_bytes: 2KiB\n", dataset=data, latency=0.01)
    store = tmp_path / "store"
    events: list[tuple[str, dict[str, Any]]] = []
    overwritten: list[int] = []

    def on_progress(stats: PipelineStats, _: Throttle) -> None:
        if not overwritten and stats.max_acked_seq >= 3:
            overwrite_with(store, 2, ids_of=1)
            overwritten.append(stats.max_acked_seq)

    hooks = ApplyHooks(
        on_progress=on_progress, on_event=lambda name, data: events.append((name, data))
    )
    outcome = apply_plan(load_plan(plan), hooks=hooks, options=ApplyOptions(proof_interval=0))
    assert outcome.exit_code == 0, outcome.message
    names = [name for name, _ in events]
    found = names.index("overwritten_found")
    assert found < names.index("writes_finished"), names
    assert events[found][1]["wal_sequence"] == 2
    assert "holds other operations than were sent" in events[found][1]["reason"]
    during = [d for n, d in events if n == "delivery_proof" and d.get("phase") == "writes"]
    assert len(during) >= 2
    assert "resend" in names[names.index("writes_finished") :]
    assert_exact(store, "docs", data)
