"""The check executors' edge verdicts against a real emulator (or a closed port): no exception escapes."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx

from elax_plan.apply.samples import sampler
from elax_plan.apply.verify import CheckResult, VerifyContext, run_checks
from elax_plan.emulator import EmulatorConfig
from elax_plan.execution_plan import PostStep
from elax_plan.live.store import StoreReader
from elax_plan.planner import check_steps
from elax_plan.retry import Retrier, RetryPolicy
from elax_plan.spec import PlanSpec, load_plan
from tests.apply.support import make_dataset, write_plan
from tests.conftest import RunningEmulator, wait_until


def plan_for(tmp_path: Path, url: str, source: Path, extra: str) -> PlanSpec:
    path = write_plan(
        tmp_path / "plan.yaml",
        url=url,
        store=(tmp_path / "store").as_uri(),
        source=f"{source}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        dims=None,
        extra=extra,
    )
    return load_plan(path, env={})


def context(spec: PlanSpec, client: httpx.Client, source: Path, last: int | None) -> VerifyContext:
    reader = StoreReader(spec.target.store, {})
    return VerifyContext(
        client=client,
        namespace=spec.target.namespace,
        read_namespace=lambda: reader.read_namespace(spec.target.namespace),
        sample=sampler(spec, sorted(p.as_uri() for p in source.glob("*.ndjson"))),
        last_acked_seq=last,
        wal_range=None if last is None else (1, last),
        upserts_acked=0,
        resends=0,
        at_last_ack=None,
        retrier=Retrier(RetryPolicy(attempts=2, initial=0.001, max=0.001)),
    )


def run_kind(spec: PlanSpec, ctx: VerifyContext, kind: str) -> CheckResult:
    steps: list[PostStep] = [s for s in check_steps(spec) if s.kind == kind]
    [result] = run_checks(ctx, steps)
    return result


def test_recall_that_evaluates_nothing_fails(emu: RunningEmulator, tmp_path: Path) -> None:
    """Sampled vectors of other dims: _debug/recall evaluates 0 queries, and that is a failure."""
    stored = make_dataset(tmp_path / "stored", files=1, rows=50, dims=8)
    body = [{"id": i, "vector": v} for i, (v, _) in stored.docs.items()]
    assert emu.write("docs", {"upserts": body}).status_code == 200
    make_dataset(tmp_path / "src", files=1, rows=20, dims=4)
    spec = plan_for(
        tmp_path, emu.url, tmp_path / "src", "verify:\n  recall:\n    num: 5\n    tune: true\n"
    )
    result = run_kind(spec, context(spec, emu.client, tmp_path / "src", last=1), "recall")
    assert not result.passed
    assert result.detail == "_debug/recall evaluated 0 queries"
    assert result.evidence["evaluated"] == 0 and result.evidence["queries"] == 5
    assert "tuning" not in result.evidence, "nothing to tune when nothing was evaluated"


def test_unreachable_target_fails_the_checks_instead_of_raising(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    """A target that went away mid-verification: each query check fails with the cause, pending."""
    make_dataset(tmp_path / "src", files=1, rows=20, dims=8)
    assert emu.write("docs", {"upserts": [{"id": "a", "vector": [0.5] * 8}]}).status_code == 200
    store = StoreReader((tmp_path / "store").as_uri(), {})
    wait_until(lambda: store.read_namespace("docs").indexed_wal >= 1, what="the index")
    spec = plan_for(
        tmp_path,
        emu.url,
        tmp_path / "src",
        "verify:\n  smoke_queries:\n    - name: self\n      sample_vectors: 2\n"
        "    - name: text\n      bm25: {field: title, text: jacket}\n  recall:\n    num: 3\n",
    )
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        results = run_checks(context(spec, client, tmp_path / "src", last=1), check_steps(spec))
    assert [r.key for r in results] == [
        "wait_for_index",
        "verify_parts",
        "wal_replayable",
        "smoke:self",
        "smoke:text",
        "recall",
    ]
    assert [r.passed for r in results] == [True, True, True, False, False, False]
    for r in results[3:]:
        assert r.incomplete, r.key
        assert r.detail.startswith("the check could not run: ConnectError"), r.detail
        assert "run `elax-plan apply` again" in r.advice


def test_an_incomplete_check_says_so_in_its_json() -> None:
    """CheckResult.to_json carries ``incomplete``: the summary shows it pending, not failed."""
    pending = CheckResult(
        "wait_for_index", "Wait for the index", False, "interrupted", {}, "", incomplete=True
    )
    assert pending.to_json()["incomplete"] is True
    assert CheckResult("recall", "Recall SLO", True, "ok").to_json()["incomplete"] is False


def test_the_epoch_must_advance_after_the_last_acknowledged_write(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """Every append bumps the epoch, so the epoch before the writes proves nothing: the check
    compares with the router read after the last acknowledgement. Without a compaction since,
    it fails; after one it passes; writes already indexed by then need no further advance."""
    emu = serve_emulator(EmulatorConfig((tmp_path / "store").as_uri(), indexer="none"))
    make_dataset(tmp_path / "src", files=1, rows=5, dims=8)
    for i in range(3):
        assert emu.write("docs", {"upserts": [{"id": f"d{i}", "vector": [0.5] * 8}]}).is_success
    spec = plan_for(tmp_path, emu.url, tmp_path / "src", "")
    reader = StoreReader(spec.target.store, {})
    after = reader.read_namespace("docs")
    assert after.epoch >= 3 and after.indexed_wal == 0  # the appends moved the epoch
    ctx = context(spec, emu.client, tmp_path / "src", last=3)
    ctx.at_last_ack = (after.epoch, after.indexed_wal)
    stalled = run_kind(spec, ctx, "verify_parts")
    assert not stalled.passed
    assert f"epoch {after.epoch} after the last acknowledgement → {after.epoch}" in stalled.detail
    assert "epoch did not advance" in stalled.advice
    emu.emulator.compact("docs")
    indexed = run_kind(spec, ctx, "verify_parts")
    assert indexed.passed, indexed.detail
    assert indexed.evidence["epoch"] > indexed.evidence["epoch_at_last_ack"] == after.epoch
    ctx.at_last_ack = (after.epoch, 3)  # compacted during the writes, before the reading
    assert run_kind(spec, ctx, "verify_parts").passed
