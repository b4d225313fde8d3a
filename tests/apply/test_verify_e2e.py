"""Verification end to end (SPEC §5 step 6): `elax-plan apply` against an emulator over a socket.

A healthy run passes every check; a recall SLO above what the plan's
``ann_params`` reach fails with exit 3, the shortfall and the advice, and
``tune: true`` names a setting that really passes; a smoke query that cannot
match fails with its evidence; a stalled indexer fails the wait naming the
cause, and a later apply finishes the verification. Every failing run still
writes a complete summary.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import structlog

from elax_plan.apply.run import ApplyHooks, apply_plan
from elax_plan.apply.samples import sample_source_rows
from elax_plan.emulator import EmulatorConfig, compact
from elax_plan.errors import EXIT_INTERRUPTED
from elax_plan.spec import load_plan
from tests.apply.support import (
    SUMMARY_SECTIONS,
    Dataset,
    check,
    last_record,
    make_dataset,
    run_cli,
    write_plan,
)
from tests.conftest import RunningEmulator, wait_until
from tests.report.markdown_check import markdown_problems

RECORD_SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "run-record.schema.json").read_text()
)


@dataclass
class Setup:
    emu: RunningEmulator
    plan: Path
    data: Dataset
    state: Path

    def apply(self, *extra: str) -> Any:
        return run_cli("apply", str(self.plan), "--auto-approve", *extra)

    def record(self) -> dict[str, Any]:
        record = last_record(self.state)
        jsonschema.validate(record, RECORD_SCHEMA)
        return record

    def summary(self) -> str:
        return (self.plan.parent / "summary.md").read_text()

    def compact(self) -> None:
        """`elax-cli compact` on the namespace, as the wait's advice tells an operator to."""
        compact(self.emu.emulator.config.store_url, "docs")


@pytest.fixture
def setup(tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]) -> Callable[..., Setup]:
    """Factory: an emulator, a dataset and a plan with ``extra``. The emulator runs a fast
    background indexer (an operator's indexer fleet: these plans wait for the index) unless
    ``indexer="none"`` says there is none, as on a real node nobody compacts."""

    def make(extra: str, rows: int = 200, dims: int = 8, **config: Any) -> Setup:
        store = tmp_path / "store"
        options = {"indexer": "background", "index_interval": 0.02, **config}
        emu = serve_emulator(EmulatorConfig(store.as_uri(), **options))
        data = make_dataset(tmp_path / "src", files=2, rows=rows, dims=dims, seed=7)
        plan = write_plan(
            tmp_path / "plan.yaml",
            url=emu.url,
            store=store.as_uri(),
            source=f"{tmp_path / 'src'}/*.ndjson",
            state=(tmp_path / "state").as_uri(),
            dims=dims,
            extra=f"summary:\n  path: {tmp_path / 'summary.md'}\n"
            + ("" if "throttle:" in extra else "throttle:\n  poll_interval: 20ms\n")
            + extra,
        )
        return Setup(emu, plan, data, tmp_path / "state")

    return make


def assert_complete(summary: str) -> None:
    """Every section of the summary is there, in order, and the markdown is well formed."""
    assert markdown_problems(summary) == []
    positions = [summary.find(section) for section in SUMMARY_SECTIONS]
    assert -1 not in positions, [
        s for s, p in zip(SUMMARY_SECTIONS, positions, strict=True) if p < 0
    ]
    assert positions == sorted(positions)


def test_healthy_run_passes_every_check(setup: Callable[..., Setup]) -> None:
    """Wait, parts, sample/BM25/filtered smoke queries and recall all pass: exit 0, numbers shown."""
    env = setup("")
    jacket = next(i for i, (_, a) in env.data.docs.items() if "jacket" in a["title"])
    n = env.data.docs[jacket][1]["n"]
    env.plan.write_text(
        env.plan.read_text()
        + f"""verify:
  smoke_queries:
    - name: self-match
      sample_vectors: 5
    - name: jacket text
      bm25: {{field: title, text: jacket}}
      min_hits: 2
    - name: one jacket
      bm25: {{field: title, text: jacket}}
      filters: {{op: eq, field: n, value: {n}}}
      expect_ids: ["{jacket}"]
  recall:
    num: 20
    min_avg_recall: 0.95
    ann_params: {{nprobe_ratio: 1.0, rerank_mode: fp32}}
"""
    )
    out = env.plan.parent / "pr" / "summary.md"
    done = env.apply("--summary-out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every check passed" in done.stdout
    record = env.record()
    assert record["outcome"] == "succeeded"
    assert [c["key"] for c in record["verification"]] == [
        "wait_for_index",
        "verify_parts",
        "wal_replayable",
        "smoke:self-match",
        "smoke:jacket text",
        "smoke:one jacket",
        "recall",
    ]
    assert all(c["passed"] for c in record["verification"])
    last_seq = record["ingest"]["last_acked_wal_sequence"]
    parts = check(record, "verify_parts")["evidence"]
    assert parts["upserts_acknowledged"] == len(env.data.docs) == record["workload"]["rows"]
    assert parts["part_rows"] >= parts["upserts_acknowledged"]
    assert parts["wal_range"] == [1, last_seq] and parts["resends"] == 0
    # The epoch moves past the reading after the last acknowledgement, unless that reading
    # already showed every write indexed (the background indexer can be that quick).
    if parts["indexed_wal_at_last_ack"] < last_seq:
        assert parts["epoch"] > parts["epoch_at_last_ack"] >= 0
    else:
        assert parts["epoch"] >= parts["epoch_at_last_ack"] >= 0
    for key in ("smoke:self-match", "smoke:jacket text", "smoke:one jacket"):
        assert check(record, key)["evidence"]["query"]["min_wal_sequence"] == last_seq, key
    filtered = check(record, "smoke:one jacket")["evidence"]
    assert filtered["query"]["filters"] == {"op": "eq", "field": "n", "value": n}
    assert [t["id"] for t in filtered["top"]] == [jacket]
    recall = check(record, "recall")["evidence"]
    assert recall["evaluated"] == recall["queries"] == 20 and recall["avg_recall"] >= 0.95
    # nprobe_ratio (the design's name) is also sent as target_recall (the code's name)
    assert recall["ann_params"] == {
        "nprobe_ratio": 1.0,
        "target_recall": 1.0,
        "rerank_mode": "fp32",
    }
    assert "tuning" not in recall, "tune is off: nothing else was tried"
    summary = env.summary()
    assert out.read_text() == summary, "--summary-out gets the same summary as summary.path"
    stored = env.state / "backfill" / "runs" / record["run_id"] / "summary.md"
    assert stored.read_text() == summary
    assert summary.startswith("# ✅ Backfill succeeded")
    assert_complete(summary)
    assert "❌" not in summary
    assert f"= {len(env.data.docs):,} ≥ {len(env.data.docs):,} upserts acknowledged" in summary


RECALL = """verify:
  recall:
    num: 40
    top_k: 10
    min_avg_recall: 0.99
    ann_params: {{target_recall: 0.05}}
    tune: {tune}
"""


def test_recall_below_the_slo_exits_3_with_the_shortfall_and_advice(
    setup: Callable[..., Setup],
) -> None:
    """target_recall 0.05 on 2,000 random 32-d vectors misses 0.99: exit 3, gap and runbook."""
    env = setup(RECALL.format(tune="false"), rows=1000, dims=32)
    done = env.apply()
    assert done.returncode == 3, done.stdout + done.stderr
    record = env.record()
    assert record["outcome"] == "verification_failed"
    recall = check(record, "recall")
    avg = recall["evidence"]["avg_recall"]
    assert avg < 0.9, "the emulator's IVF should miss clearly at target_recall 0.05"
    assert recall["evidence"]["evaluated"] == 40
    assert f"is {0.99 - avg:.4f} below the SLO 0.99" in recall["detail"]
    for advice in ("target_recall", "nprobe", "rerank_mode: fp32", "rerank_scale"):
        assert advice in recall["advice"], advice
    assert record["recall"]["tuning"] is None
    summary = env.summary()
    assert summary.startswith("# ❌ Data written, verification failed")
    assert f"avg_recall **{avg:.4f}** vs SLO 0.99 over 40 queries: missed" in summary
    assert "recall-drift runbook" in summary
    assert "Recall SLO: avg_recall" in done.stdout  # the closing message names the failure
    assert_complete(summary)


def test_recall_tune_reports_the_cheapest_setting_that_passes(
    setup: Callable[..., Setup],
) -> None:
    """tune: true probes stronger ann_params and names the cheapest that really meets the SLO."""
    env = setup(RECALL.format(tune="true"), rows=1000, dims=32)
    done = env.apply()
    assert done.returncode == 3, "tuning measures only: the gate judges the plan's ann_params"
    record = env.record()
    tuning = record["recall"]["tuning"]
    cheapest = tuning["cheapest"]
    assert cheapest is not None, tuning
    tried = tuning["tried"]
    assert tried[-1]["ann_params"] == cheapest and tried[-1]["avg_recall"] >= 0.99
    assert all(t["avg_recall"] < 0.99 for t in tried[:-1]), "the first passing one is reported"
    # The named setting really passes: the same sampled queries, asked directly.
    spec = load_plan(env.plan, env={})
    assert spec.verify.recall is not None
    seed = spec.verify.recall.seed
    queries = [r.vector for r in sample_source_rows(spec, spec_urls(env), 40, seed)]
    answer = env.emu.recall(
        "docs",
        {"num": 40, "top_k": 10, "queries": queries, "metric": "cosine", "ann_params": cheapest},
    ).json()
    assert answer["avg_recall"] >= 0.99 and answer["evaluated"] == 40
    summary = env.summary()
    shown = json.dumps(cheapest, sort_keys=True)
    assert f"Cheapest setting that meets the SLO: `{shown}`" in summary
    assert "The gate still fails" in summary
    assert "verify.recall.ann_params" in summary


def spec_urls(env: Setup) -> list[str]:
    """The source URLs apply recorded as done, in the ledger's order."""
    ledger = json.loads((env.state / "backfill" / "state.json").read_text())
    return [u for u, f in ledger["files"].items() if f["status"] == "done"]


def test_smoke_query_that_cannot_match_fails_with_its_evidence(
    setup: Callable[..., Setup],
) -> None:
    """expect_ids: [nope] → exit 3; the summary shows the query, what came back and what was expected."""
    env = setup(
        "verify:\n  smoke_queries:\n    - name: impossible\n      bm25: {field: title, text: jacket}\n"
        '      expect_ids: ["nope"]\n'
    )
    done = env.apply()
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Smoke query: impossible: expected ids not in the top 10: nope" in done.stdout
    record = env.record()
    smoke = check(record, "smoke:impossible")
    assert not smoke["passed"]
    evidence = smoke["evidence"]
    assert evidence["query"]["rank_by"] == ["title", "BM25", "jacket"]
    assert evidence["expected_ids"] == ["nope"] and evidence["hits"] == 10
    summary = env.summary()
    assert_complete(summary)
    failure = summary[summary.index("**Smoke query: impossible** failed") :]
    assert '"rank_by": [\n      "title",\n      "BM25",\n      "jacket"\n    ]' in failure
    assert '"expected_ids": [\n    "nope"\n  ]' in failure
    assert f'"id": "{evidence["top"][0]["id"]}"' in failure
    assert "Traceback" not in done.stderr
    # `elax-plan summary` prints the stored summary again, for the last or a given run.
    again = run_cli("summary", str(env.plan))
    assert again.returncode == 0 and again.stdout == summary
    by_id = run_cli("summary", str(env.plan), "--run", record["run_id"])
    assert by_id.returncode == 0 and by_id.stdout == summary
    unknown = run_cli("summary", str(env.plan), "--run", "20200101T000000Z-000000")
    assert unknown.returncode == 1 and record["run_id"] in unknown.stderr
    assert "Traceback" not in unknown.stderr
    # The last run is the one the ledger names, not the greatest id: a host whose clock runs
    # ahead may have left a run that sorts later.
    ahead = env.state / "backfill" / "runs" / "29991231T000000.000Z-ffffff"
    ahead.mkdir()
    (ahead / "summary.json").write_text(json.dumps({**record, "run_id": ahead.name}))
    (ahead / "summary.md").write_text("# not the last run\n")
    assert run_cli("summary", str(env.plan)).stdout == summary


def test_stalled_indexer_fails_the_wait_naming_the_cause_then_apply_finishes_it(
    setup: Callable[..., Setup],
) -> None:
    """No indexer: the wait fails after index_timeout naming it; once indexed, apply re-verifies."""
    env = setup(
        "throttle:\n  max_wal_lag: 1000\n  poll_interval: 20ms\n"
        "verify:\n  index_timeout: 1s\n  smoke_queries:\n    - name: self-match\n"
        "      sample_vectors: 3\n",
        indexer="none",
    )
    done = env.apply()
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Wait for the index" in done.stdout and "no indexer is running" in done.stdout
    record = env.record()
    assert [c["key"] for c in record["verification"]] == ["wait_for_index"]
    wait = record["verification"][0]
    assert not wait["passed"]
    assert wait["evidence"]["indexed_wal"] == wait["evidence"]["indexed_wal_start"] == 0
    assert wait["evidence"]["target"] == record["ingest"]["last_acked_wal_sequence"]
    assert "elax-cli compact" in wait["advice"]
    summary = env.summary()
    assert_complete(summary)
    assert "indexed_wal never moved" in summary
    assert "Verification did not run" not in summary
    status = run_cli("status", str(env.plan))
    assert "verification pending" in status.stdout, status.stdout
    # The advice says: run elax-cli compact, then apply again to finish the verification.
    env.compact()
    again = env.apply()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "the last run stopped before its verification finished" in again.stdout
    finished = env.record()
    assert [c["key"] for c in finished["verification"]] == [
        "wait_for_index",
        "verify_parts",
        "wal_replayable",
        "smoke:self-match",
    ]
    assert all(c["passed"] for c in finished["verification"])
    # The re-verification checks the first run's writes, not an empty range.
    parts = next(c for c in finished["verification"] if c["key"] == "verify_parts")
    assert parts["evidence"]["upserts_acknowledged"] == record["workload"]["rows"] > 0
    assert parts["evidence"]["wal_range"][1] == record["ingest"]["last_acked_wal_sequence"]
    third = env.apply()
    assert third.returncode == 0 and "No changes" in third.stdout, third.stdout + third.stderr


def test_changed_smoke_queries_verify_again_without_writing(setup: Callable[..., Setup]) -> None:
    """A verdict says nothing about checks added since: the next apply verifies, writes nothing."""
    env = setup("")
    assert env.apply().returncode == 0
    written = env.record()
    assert run_cli("plan", str(env.plan), "--detailed-exitcode").returncode == 0
    env.plan.write_text(
        env.plan.read_text() + "verify:\n  smoke_queries:\n    - name: jacket\n"
        "      bm25: {field: title, text: jacket}\n      min_hits: 1\n"
    )
    planned = run_cli("plan", str(env.plan), "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert (
        "the smoke queries, the recall gate or the comparison changed since the last "
        "verification" in planned.stdout
    )
    again = env.apply()
    assert again.returncode == 0, again.stdout + again.stderr
    record = env.record()
    assert record["run_id"] != written["run_id"] and record["workload"]["rows"] == 0
    assert [c["key"] for c in record["verification"]] == [
        "wait_for_index",
        "verify_parts",
        "wal_replayable",
        "smoke:jacket",
    ]
    assert all(c["passed"] for c in record["verification"])
    # It checks the last run's writes, not an empty range.
    parts = check(record, "verify_parts")["evidence"]
    assert parts["upserts_acknowledged"] == written["workload"]["rows"] > 0
    assert parts["wal_range"][1] == written["ingest"]["last_acked_wal_sequence"]
    third = env.apply()
    assert third.returncode == 0 and "No changes" in third.stdout, third.stdout + third.stderr


def test_a_stop_right_after_the_last_write_leaves_the_verification_pending(
    setup: Callable[..., Setup],
) -> None:
    """A stop between "writes_finished" and the verification: the data is written, the
    verification is what the next apply finishes (not a resume of writes)."""
    env = setup("")
    stop = threading.Event()

    def on_event(name: str, _: dict[str, Any]) -> None:
        if name == "writes_finished":
            stop.set()

    outcome = apply_plan(load_plan(env.plan), hooks=ApplyHooks(on_event=on_event), stop=stop)
    assert outcome.exit_code == EXIT_INTERRUPTED
    assert outcome.message.startswith("Interrupted during verification: the data is written")
    assert "run_id" not in structlog.contextvars.get_contextvars()  # not left bound for the next
    assert env.record()["outcome"] == "interrupted"
    assert "verification pending" in run_cli("status", str(env.plan)).stdout
    again = env.apply()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "the last run stopped before its verification finished" in again.stdout
    assert env.record()["workload"]["rows"] == 0  # nothing was written twice


def test_sigterm_during_the_wait_stops_at_once_and_leaves_verification_pending(
    setup: Callable[..., Setup],
) -> None:
    """SIGTERM while waiting an hour for the index: exit 130 now, summary written, re-run verifies."""
    env = setup(
        "throttle:\n  max_wal_lag: 1000\n  poll_interval: 20ms\nverify:\n  index_timeout: 1h\n",
        indexer="none",
    )
    apply = subprocess.Popen(
        [sys.executable, "-m", "elax_plan", "apply", str(env.plan), "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        # The writes are done (and flushed with the checkpoint) before the wait begins.
        wait_until(lambda: "writes_finished" in events_text(env.state), timeout=60, what="writes")
        apply.send_signal(signal.SIGTERM)
        out, err = apply.communicate(timeout=30)
    finally:
        if apply.poll() is None:
            apply.kill()
    assert apply.returncode == 130, out + err
    assert "finish the verification" in err
    record = env.record()
    assert record["outcome"] == "interrupted"
    assert env.summary().startswith("# ⏸️ Backfill interrupted")
    assert "verification pending" in run_cli("status", str(env.plan)).stdout
    env.compact()  # what an operator does on a real node
    again = env.apply()
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(c["passed"] for c in env.record()["verification"])


def events_text(state: Path) -> str:
    """Every events.ndjson of the plan's runs, concatenated."""
    return "".join(p.read_text() for p in state.glob("backfill/runs/*/events.ndjson"))


def test_an_interrupted_wait_for_the_index_is_pending_not_failed(
    setup: Callable[..., Setup],
) -> None:
    """Stopped while the wait for the index polls: the record's check is incomplete, and the
    summary shows it ⏸️ pending with how to finish it, not ❌ failed."""
    env = setup(
        "throttle:\n  max_wal_lag: 1000\n  poll_interval: 20ms\nverify:\n  index_timeout: 1h\n",
        indexer="none",
    )
    stop = threading.Event()
    written = threading.Event()

    def on_event(name: str, _: dict[str, Any]) -> None:
        if name == "writes_finished":
            written.set()
        elif name == "lag" and written.is_set():  # only the wait for the index polls now
            stop.set()

    outcome = apply_plan(load_plan(env.plan), hooks=ApplyHooks(on_event=on_event), stop=stop)
    assert outcome.exit_code == EXIT_INTERRUPTED, outcome.message
    wait = check(env.record(), "wait_for_index")
    assert wait["incomplete"] is True and not wait["passed"], wait
    summary = env.summary()
    assert_complete(summary)
    assert "| ⏸️ | Wait for the index | pending: interrupted while indexed_wal" in summary
    assert "run `elax-plan apply` again to finish" in summary
    assert "| ❌ |" not in summary and "** failed" not in summary, summary
