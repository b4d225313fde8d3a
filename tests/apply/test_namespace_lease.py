"""One writer per namespace: two different plans on one namespace, as real processes.

Plans ``alpha`` and ``beta`` write distinct id ranges into namespace ``docs`` of one
emulator and share ``state.uri``. The holder is kept inside its run by an absent indexer
(its throttle pauses on WAL lag), so the other plan meets a held namespace lease for as long
as the test wants, without sleeping: the test polls, then starts the indexer.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from elax_plan.emulator import EmulatorConfig
from elax_plan.state import Holder, LeaseKey, acquire, open_backend, read_ledger
from tests.apply.support import Dataset, assert_exact, make_dataset, run_cli, write_plan
from tests.conftest import RunningEmulator, wait_until

# Small chunks and a lag limit of 1: with no indexer running, the holder pauses after its
# first writes and keeps its leases until the indexer starts.
PAUSING = (
    "ingest:\n  chunk_bytes: 4KiB\n"
    "throttle:\n  max_wal_lag: 1\n  resume_wal_lag: 0\n  stall_timeout: 1h\n  poll_interval: 50ms\n"
)


@dataclass
class TwoPlans:
    emu: RunningEmulator
    plans: dict[str, Path]
    data: dict[str, Dataset]
    tmp: Path

    @property
    def store(self) -> Path:
        return self.tmp / "store"

    @property
    def namespace_lock(self) -> Path:
        return self.tmp / "state" / "namespaces" / "docs.lock"

    def release_indexer(self) -> None:
        self.emu.emulator.indexer.start()

    def wait_caught_up(self) -> None:
        """Until the indexer has indexed every WAL entry (a fresh plan's precondition)."""
        router = self.store / "namespaces" / "docs" / "router.json"

        def caught_up() -> bool:
            try:
                doc = json.loads(router.read_text())
            except (OSError, ValueError):
                return False  # not written yet, or being replaced
            return bool(doc["indexed_wal"] == doc["wal_highwater"])

        wait_until(caught_up, timeout=60, what="the indexer to catch up")

    def assert_both_exact(self) -> None:
        """The namespace holds both datasets exactly (distinct ids: nothing overwritten)."""
        both = Dataset(
            self.data["alpha"].files + self.data["beta"].files,
            {**self.data["alpha"].docs, **self.data["beta"].docs},
        )
        assert_exact(self.store, "docs", both)


@pytest.fixture
def two_plans(tmp_path: Path, serve_emulator: Callable[..., RunningEmulator]) -> TwoPlans:
    store = tmp_path / "store"
    emu = serve_emulator(
        # No indexer until the test starts one (the operator's fleet coming up).
        EmulatorConfig(store.as_uri(), index_interval=0.02)
    )
    plans: dict[str, Path] = {}
    data: dict[str, Dataset] = {}
    for name, start, seed in (("alpha", 0, 1), ("beta", 100_000, 2)):
        data[name] = make_dataset(tmp_path / f"src-{name}", start_id=start, seed=seed)
        plans[name] = write_plan(
            tmp_path / f"{name}.yaml",
            url=emu.url,
            store=store.as_uri(),
            source=f"{tmp_path / f'src-{name}'}/*.ndjson",
            state=(tmp_path / "state").as_uri(),
            extra=PAUSING,
            name=name,
        )
    return TwoPlans(emu, plans, data, tmp_path)


def start_apply(plan: Path, stderr: Path, *extra: str) -> subprocess.Popen[str]:
    """``apply PLAN --auto-approve [EXTRA]`` in a subprocess; stderr to a file we can poll."""
    with stderr.open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "elax_plan", "apply", str(plan), "--auto-approve", *extra],
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
        )


def finish(proc: subprocess.Popen[str], stderr: Path) -> tuple[int, str]:
    try:
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, stderr.read_text()


def acked_sequences(tmp: Path, plan: str) -> list[int]:
    """The WAL sequence of every write the plan's ledger recorded (none before its ledger)."""
    ledger = read_ledger(open_backend((tmp / "state").as_uri()), plan)
    return [] if ledger is None else [a.seq for f in ledger.files.values() for a in f.acks]


def test_two_plans_started_together_one_waits_and_both_end_exact(two_plans: TwoPlans) -> None:
    """Started at once with --lock-timeout: one writes, the other waits for it (and says for
    whom), then writes; their WAL sequences do not interleave and both end exact."""
    tp = two_plans
    errs = {name: tp.tmp / f"{name}.err" for name in tp.plans}
    procs = {
        name: start_apply(plan, errs[name], "--lock-timeout", "3m")
        for name, plan in tp.plans.items()
    }
    try:

        def waiter() -> str | None:
            found = [n for n, e in errs.items() if "Waiting up to 3m" in e.read_text()]
            return found[0] if found else None

        wait_until(
            lambda: waiter() is not None or any(p.poll() is not None for p in procs.values()),
            timeout=120,
            what="one apply to wait for the other's namespace lease",
        )
        waiting = waiter()
        assert waiting is not None, {n: e.read_text() for n, e in errs.items()}
        holder = "beta" if waiting == "alpha" else "alpha"
        said = errs[waiting].read_text()
        assert f"for namespace 'docs', written by plan '{holder}'" in said, said
        assert f"pid {procs[holder].pid}" in said, said
        assert procs[waiting].poll() is None, "it waits instead of giving up"
        tp.release_indexer()
        results = {name: finish(procs[name], errs[name]) for name in procs}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    for name, (code, err) in results.items():
        assert code == 0, f"{name}: {err}"
    assert results[holder][1].count("Waiting up to") == 0
    # One writer at a time: every write of the holder comes before every write of the other.
    assert max(acked_sequences(tp.tmp, holder)) < min(acked_sequences(tp.tmp, waiting))
    assert not tp.namespace_lock.exists(), "the namespace lease is released at the end"
    tp.assert_both_exact()


def test_without_lock_timeout_the_second_exits_1_naming_the_first(two_plans: TwoPlans) -> None:
    """While alpha writes, beta exits 1 naming plan alpha, its holder, since when, and how to
    go on; it wrote nothing. Once alpha is done, beta runs and both are exact."""
    tp = two_plans
    err = tp.tmp / "alpha.err"
    alpha = start_apply(tp.plans["alpha"], err)
    try:
        wait_until(tp.namespace_lock.exists, timeout=60, what="alpha's namespace lease")
        held = json.loads(tp.namespace_lock.read_text())
        refused = run_cli("apply", str(tp.plans["beta"]), "--auto-approve")
        assert refused.returncode == 1, refused.stderr
        error = next(line for line in refused.stderr.splitlines() if line.startswith("Error:"))
        assert "Namespace 'docs' is being written by plan 'alpha'" in error, error
        assert f"(pid {alpha.pid})" in error and held["holder"]["user"] in error, error
        assert f"since {held['created']}" in error and held["lock_id"] in error, error
        assert "--lock-timeout" in error, error
        assert f"elax-plan unlock {tp.plans['beta']} --namespace {held['lock_id']}" in error
        assert "Traceback" not in refused.stderr
        assert not (tp.tmp / "state" / "beta" / "state.json").exists(), "beta wrote nothing"
        assert not (tp.tmp / "state" / "beta" / "lock.json").exists(), "its plan lease is freed"
        tp.release_indexer()
        code, alpha_err = finish(alpha, err)
    finally:
        if alpha.poll() is None:
            alpha.kill()
            alpha.wait()
    assert code == 0, alpha_err
    done = run_cli("apply", str(tp.plans["beta"]), "--auto-approve")
    assert done.returncode == 0, done.stderr
    tp.assert_both_exact()


def test_a_killed_holders_namespace_lease_is_taken_over(two_plans: TwoPlans) -> None:
    """kill -9 of alpha mid-write leaves docs.lock behind; beta on this host takes it over at
    once; alpha's re-run resumes; both end exact."""
    tp = two_plans
    err = tp.tmp / "alpha.err"
    alpha = start_apply(tp.plans["alpha"], err)
    try:
        wait_until(tp.namespace_lock.exists, timeout=60, what="alpha's namespace lease")
        wal = tp.store / "namespaces" / "docs" / "wal"
        wait_until(lambda: any(wal.glob("WAL-*")), timeout=60, what="alpha's first write")
    finally:
        alpha.send_signal(signal.SIGKILL)
        alpha.wait(timeout=30)
    left = json.loads(tp.namespace_lock.read_text())
    assert left["plan"] == "alpha" and left["holder"]["pid"] == alpha.pid
    tp.release_indexer()
    tp.wait_caught_up()
    beta = run_cli("apply", str(tp.plans["beta"]), "--auto-approve")
    assert beta.returncode == 0, beta.stderr
    assert "namespace lease taken over" in beta.stderr and left["lock_id"] in beta.stderr
    again = run_cli("apply", str(tp.plans["alpha"]), "--auto-approve")
    assert again.returncode == 0, again.stderr
    assert not tp.namespace_lock.exists()
    tp.assert_both_exact()


def test_status_and_unlock_namespace_for_a_dead_remote_holder(two_plans: TwoPlans) -> None:
    """A namespace lease left by a run on another host: status shows it under the other
    plan's name; unlock without --namespace or with a wrong id is refused; unlock --namespace
    with its lock id frees it, and beta applies."""
    tp = two_plans
    tp.release_indexer()
    beta = str(tp.plans["beta"])
    backend = open_backend((tp.tmp / "state").as_uri())
    held = acquire(
        backend,
        "alpha",
        key=LeaseKey.namespace("docs"),
        holder=Holder(host="elsewhere", pid=4242, user="ops"),
    )
    shown = run_cli("status", beta)
    assert shown.returncode == 0, shown.stderr
    assert "  lease: free" in shown.stdout, shown.stdout
    assert (
        "namespace lease: held — apply of plan 'alpha' by user ops on host elsewhere"
        in shown.stdout
    ), shown.stdout
    assert shown.stdout.count(held.lock_id) == 1
    refused = run_cli("apply", beta, "--auto-approve")
    assert refused.returncode == 1 and "being written by plan 'alpha'" in refused.stderr
    plan_lease = run_cli("unlock", beta, held.lock_id)
    assert plan_lease.returncode == 1 and "Plan 'beta' is not locked" in plan_lease.stderr
    wrong = run_cli("unlock", beta, "--namespace", "00000000-0000-0000-0000-000000000000")
    assert wrong.returncode == 1 and held.lock_id not in wrong.stderr, wrong.stderr
    assert f"elax-plan unlock {beta} --namespace LOCK_ID" in wrong.stderr, wrong.stderr
    right = run_cli("unlock", beta, "--namespace", held.lock_id)
    assert right.returncode == 0, right.stderr
    assert "on namespace 'docs' (was held for plan 'alpha' by user ops" in right.stdout
    assert not tp.namespace_lock.exists()
    done = run_cli("apply", beta, "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert_exact(tp.store, "docs", tp.data["beta"])


def test_ctrl_c_while_waiting_for_the_namespace_lease_releases_the_plan_lease(
    two_plans: TwoPlans,
) -> None:
    """Ctrl-C during --lock-timeout's wait ends at once (130), having written nothing, and
    leaves neither lease behind."""
    tp = two_plans
    backend = open_backend((tp.tmp / "state").as_uri())
    acquire(
        backend,
        "alpha",
        key=LeaseKey.namespace("docs"),
        holder=Holder(host="elsewhere", pid=4242, user="ops"),
    )
    err = tp.tmp / "beta.err"
    beta = start_apply(tp.plans["beta"], err, "--lock-timeout", "10m")
    try:
        wait_until(
            lambda: "Waiting up to 10m" in err.read_text() or beta.poll() is not None,
            timeout=60,
            what="beta to wait",
        )
        assert beta.poll() is None, err.read_text()
        beta.send_signal(signal.SIGINT)
        code = beta.wait(timeout=30)
    finally:
        if beta.poll() is None:
            beta.kill()
            beta.wait()
    said = err.read_text()
    assert code == 130, said
    assert "Interrupted while waiting for a lease" in said and "nothing was written" in said
    assert "Interrupted again" not in said, "it stopped without the grace timer"
    assert not (tp.tmp / "state" / "beta" / "lock.json").exists()
    assert tp.namespace_lock.exists(), "the other plan's lease is not ours to release"
