"""The state conformance suite: every test runs on memory://, file:// and s3:// (moto server).

Like Terraform's backend tests, one suite pins the semantics every backend must
share: compare-and-swap, the lease, the fenced ledger, the namespace record and
the run files.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from elax_plan.errors import LeaseCorrupt, StateError
from elax_plan.state import (
    CORRUPT_LOCK_ID,
    Conflict,
    FileEntry,
    FileStatus,
    Heartbeat,
    Holder,
    Lease,
    LeaseHeld,
    LeaseLost,
    Ledger,
    LedgerStore,
    RunFiles,
    RunState,
    StateBackend,
    TargetIdentity,
    Verification,
    Versioned,
    acquire,
    force_unlock,
    last_run_id,
    list_runs,
    new_run_id,
    read_lease,
    read_ledger,
    read_namespace_record,
    read_status,
    record_namespace_use,
)
from tests.conftest import wait_until
from tests.state.conftest import FakeClock

PLAN = "products-reembed-v3"


def _ledger() -> Ledger:
    return Ledger.new(
        PLAN,
        TargetIdentity.of("http://127.0.0.1:3000", "file:///var/lib/elacsym", "products"),
        "cosine",
        768,
    )


@pytest.fixture
def live_child() -> Iterator[subprocess.Popen[bytes]]:
    """A real process that lives until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        yield proc
    finally:
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
        proc.wait(timeout=30)


# ------------------------------------------------------------------ compare-and-swap


def test_read_missing_is_none(backend: StateBackend) -> None:
    """Reading a key that was never written gives None, not an error."""
    assert backend.read("p/state.json") is None


def test_create_then_create_conflicts(backend: StateBackend) -> None:
    """create writes once; a second create of the same key is a Conflict showing what is there."""
    version = backend.create("p/x.json", b"one")
    got = backend.read("p/x.json")
    assert got is not None and got.data == b"one" and got.version == version
    with pytest.raises(Conflict) as caught:
        backend.create("p/x.json", b"two")
    assert caught.value.current == got
    assert "already exists" in str(caught.value) and backend.location("p/x.json") in str(
        caught.value
    )
    assert backend.read("p/x.json") == got


def test_replace_needs_the_current_version(backend: StateBackend) -> None:
    """replace succeeds from the current version and refuses a stale one or a missing key."""
    v1 = backend.create("p/x.json", b"one")
    v2 = backend.replace("p/x.json", b"two", v1)
    assert v2 != v1
    with pytest.raises(Conflict) as caught:
        backend.replace("p/x.json", b"three", v1)
    assert caught.value.current is not None and caught.value.current.data == b"two"
    with pytest.raises(Conflict) as missing:
        backend.replace("p/absent.json", b"x", v2)
    assert missing.value.current is None
    current = backend.read("p/x.json")
    assert current is not None and current.data == b"two" and current.version == v2


def test_conditional_delete(backend: StateBackend) -> None:
    """delete with a stale version is refused; with the current one it removes the object."""
    v1 = backend.create("p/x.json", b"one")
    v2 = backend.replace("p/x.json", b"two", v1)
    with pytest.raises(Conflict):
        backend.delete("p/x.json", expected_version=v1)
    backend.delete("p/x.json", expected_version=v2)
    assert backend.read("p/x.json") is None
    backend.delete("p/x.json")  # unconditional delete of a missing key is a no-op
    with pytest.raises(Conflict):
        backend.delete("p/x.json", expected_version=v2)


def test_create_after_delete_gets_a_fresh_start(backend: StateBackend) -> None:
    """After a delete, create works again and the old version no longer replaces anything."""
    v1 = backend.create("p/x.json", b"one")
    backend.delete("p/x.json", expected_version=v1)
    backend.create("p/x.json", b"again")
    current = backend.read("p/x.json")
    assert current is not None and current.data == b"again"


def test_put_list_and_append(backend: StateBackend) -> None:
    """put overwrites, append_lines appends in order, list finds keys under a folder only."""
    backend.put("p/runs/r1/summary.md", b"# one")
    backend.put("p/runs/r1/summary.md", b"# two")
    backend.append_lines("p/runs/r1/events.ndjson", [b'{"n":1}', b'{"n":2}'])
    backend.append_lines("p/runs/r1/events.ndjson", [b'{"n":3}'])
    backend.append_lines("p/runs/r1/events.ndjson", [])
    backend.put("other/state.json", b"{}")
    summary = backend.read("p/runs/r1/summary.md")
    events = backend.read("p/runs/r1/events.ndjson")
    assert summary is not None and summary.data == b"# two"
    assert events is not None and events.data == b'{"n":1}\n{"n":2}\n{"n":3}\n'
    assert backend.list("p") == ["p/runs/r1/events.ndjson", "p/runs/r1/summary.md"]
    assert backend.list("p/runs/") == ["p/runs/r1/events.ndjson", "p/runs/r1/summary.md"]
    assert backend.list("nothing") == []


def test_keys_are_validated(backend: StateBackend) -> None:
    """Keys that escape the root or use reserved dot-names are refused before any I/O."""
    for bad in ("", "/abs", "a/../b", "a//b", "a/.hidden"):
        with pytest.raises(ValueError):
            backend.read(bad)


def test_racing_replace_loses_no_update(backend: StateBackend) -> None:
    """Threads racing read-then-replace on one counter: every increment lands exactly once."""
    backend.create("p/counter", b"0")
    threads, increments = 4, 6
    conflicts = [0] * threads
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            start.wait()
            for _ in range(increments):
                while True:
                    current = backend.read("p/counter")
                    assert current is not None
                    try:
                        backend.replace(
                            "p/counter", str(int(current.data) + 1).encode(), current.version
                        )
                        break
                    except Conflict:
                        conflicts[index] += 1
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    final = backend.read("p/counter")
    assert final is not None and int(final.data) == threads * increments


def test_racing_create_has_one_winner(backend: StateBackend) -> None:
    """Threads racing create on one key: exactly one succeeds, the rest get Conflict."""
    threads = 6
    start = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        start.wait()
        try:
            backend.create("p/lock.json", f"holder-{index}".encode())
            result = "won"
        except Conflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(outcomes) == ["conflict"] * (threads - 1) + ["won"]


# ------------------------------------------------------------------------------ lease


def test_acquire_then_second_is_held(backend: StateBackend, clock: FakeClock) -> None:
    """A second acquire is LeaseHeld naming the holder, the lock id and the unlock command."""
    lease = acquire(backend, PLAN, "apply", clock=clock)
    stored = read_lease(backend, PLAN)
    assert stored is not None and stored.lock_id == lease.lock_id
    assert stored.holder == Holder.current() and stored.expires == clock.now + 60
    with pytest.raises(LeaseHeld) as caught:
        acquire(backend, PLAN, "apply", clock=clock, plan_file="plans/p.yaml")
    message = str(caught.value)
    me = Holder.current()
    assert lease.lock_id in message
    assert f"pid {me.pid}" in message and me.host in message and me.user in message
    assert f"elax-plan unlock plans/p.yaml {lease.lock_id}" in message
    assert caught.value.info.lock_id == lease.lock_id
    assert "Traceback" not in message


def test_expired_lease_is_taken_over(backend: StateBackend, clock: FakeClock) -> None:
    """Once a lease has expired, acquire takes it over and records whom it replaced."""
    old = acquire(backend, PLAN, clock=clock, ttl=30, holder=_remote_holder())
    clock.advance(29)
    with pytest.raises(LeaseHeld):
        acquire(backend, PLAN, clock=clock)
    clock.advance(1)
    new = acquire(backend, PLAN, clock=clock)
    assert new.taken_over is not None and new.taken_over.lock_id == old.lock_id
    stored = read_lease(backend, PLAN)
    assert stored is not None and stored.lock_id == new.lock_id


def _remote_holder() -> Holder:
    return Holder(host="another-host.example", pid=4242, user="ops", start_time="1")


def test_dead_local_holder_is_taken_over_at_once(
    backend: StateBackend, clock: FakeClock, live_child: subprocess.Popen[bytes]
) -> None:
    """A lease held by a process on this host is held while it lives and free once it exits."""
    holder = Holder.of_process(live_child.pid)
    old = acquire(backend, PLAN, clock=clock, holder=holder)
    with pytest.raises(LeaseHeld):
        acquire(backend, PLAN, clock=clock)
    assert live_child.stdin is not None
    live_child.stdin.close()
    live_child.wait(timeout=30)
    new = acquire(backend, PLAN, clock=clock)  # no time has passed
    assert new.taken_over is not None and new.taken_over.lock_id == old.lock_id


def test_reused_pid_counts_as_dead(backend: StateBackend, clock: FakeClock) -> None:
    """A holder whose PID now belongs to a process with another start time is gone."""
    me = Holder.current()
    reused = Holder(
        host=me.host,
        pid=me.pid,
        user=me.user,
        start_time="1",  # not this process's start time
        boot_id=me.boot_id,
        pid_namespace=me.pid_namespace,
    )
    acquire(backend, PLAN, clock=clock, holder=reused)
    assert acquire(backend, PLAN, clock=clock).taken_over is not None


def test_remote_holder_is_never_judged_by_pid(backend: StateBackend, clock: FakeClock) -> None:
    """A holder on another host keeps the lease until it expires, whatever its pid."""
    acquire(backend, PLAN, clock=clock, holder=_remote_holder())
    with pytest.raises(LeaseHeld):
        acquire(backend, PLAN, clock=clock)


def test_wait_acquires_when_the_holder_releases(backend: StateBackend) -> None:
    """With wait > 0, acquire polls and takes the lease as soon as the holder releases it."""
    first = acquire(backend, PLAN)
    seen_held = threading.Event()
    result: list[Lease | BaseException] = []

    def waiter() -> None:
        try:
            result.append(
                acquire(
                    backend, PLAN, wait=30, poll_interval=0.02, on_wait=lambda _: seen_held.set()
                )
            )
        except BaseException as exc:  # re-raised in the main thread below
            result.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    assert seen_held.wait(30)
    assert first.release() is True
    thread.join(30)
    assert len(result) == 1 and isinstance(result[0], Lease)
    assert result[0].taken_over is None and result[0].lock_id != first.lock_id


def test_wait_gives_up_with_lease_held(backend: StateBackend) -> None:
    """When the holder keeps the lease, a waiting acquire ends in LeaseHeld after the wait."""
    holder = acquire(backend, PLAN)
    with pytest.raises(LeaseHeld) as caught:
        acquire(backend, PLAN, wait=0.1, poll_interval=0.02)
    assert "after waiting" in str(caught.value) and holder.lock_id in str(caught.value)


def test_renew_extends_and_detects_takeover(backend: StateBackend, clock: FakeClock) -> None:
    """renew moves expires forward; once another process took the lease, renew is LeaseLost."""
    lease = acquire(backend, PLAN, clock=clock, ttl=60)
    clock.advance(30)
    renewed = lease.renew()
    assert renewed.expires == clock.now + 60
    stored = read_lease(backend, PLAN)
    assert stored is not None and stored.expires == renewed.expires
    clock.advance(61)
    thief = acquire(backend, PLAN, clock=clock)
    with pytest.raises(LeaseLost) as caught:
        lease.renew()
    assert thief.lock_id in str(caught.value) and lease.lock_id in str(caught.value)
    with pytest.raises(LeaseLost):
        lease.verify()


def test_release_only_deletes_our_own_lease(backend: StateBackend, clock: FakeClock) -> None:
    """release removes our lease, but leaves a lease that was taken over from us alone."""
    lease = acquire(backend, PLAN, clock=clock)
    assert lease.release() is True
    assert read_lease(backend, PLAN) is None
    assert lease.release() is False

    stale = acquire(backend, PLAN, clock=clock, ttl=10)
    clock.advance(11)
    thief = acquire(backend, PLAN, clock=clock)
    assert stale.release() is False
    stored = read_lease(backend, PLAN)
    assert stored is not None and stored.lock_id == thief.lock_id


def test_force_unlock_refuses_a_wrong_id(backend: StateBackend, clock: FakeClock) -> None:
    """force_unlock with a wrong lock id refuses and names the real holder, but not its lock
    id (which would let anyone unlock): it points at `elax-plan status`; the right id works."""
    lease = acquire(backend, PLAN, "apply", clock=clock)
    with pytest.raises(StateError) as caught:
        force_unlock(backend, PLAN, "not-the-id", plan_file="p.yaml")
    message = str(caught.value)
    assert "not-the-id" in message and lease.lock_id not in message
    assert Holder.current().host in message and "apply" in message
    assert "elax-plan status p.yaml" in message
    assert read_lease(backend, PLAN) is not None
    removed = force_unlock(backend, PLAN, lease.lock_id)
    assert removed.lock_id == lease.lock_id
    assert read_lease(backend, PLAN) is None
    with pytest.raises(StateError, match="not locked"):
        force_unlock(backend, PLAN, lease.lock_id)
    with pytest.raises(LeaseLost):
        lease.renew()
    # After a force-unlock the next run takes the lease straight away.
    acquire(backend, PLAN, clock=clock)


@pytest.mark.parametrize("garbage", [b'{"lock_id": "x", "plan', b"[1, 2]", b'{"lock_version": 1}'])
def test_a_corrupt_lease_is_removed_only_by_the_word_corrupt(
    backend: StateBackend, clock: FakeClock, garbage: bytes
) -> None:
    """A lock.json that is no lease blocks acquire and status says so; unlock with a lock id
    is refused, `unlock PLAN corrupt` removes it, and the plan can be locked again."""
    backend.create(f"{PLAN}/lock.json", garbage)
    with pytest.raises(LeaseCorrupt) as blocked:
        acquire(backend, PLAN, clock=clock, plan_file="p.yaml")
    assert "elax-plan unlock p.yaml corrupt" in str(blocked.value)
    status = read_status(backend, PLAN, clock=clock)
    assert status.lease.info is None and status.lease.corrupt, status
    with pytest.raises(StateError, match=r"unlock p\.yaml corrupt"):
        force_unlock(backend, PLAN, "25d30fda-6978-40af-90cd-821143d3fa5d", plan_file="p.yaml")
    assert backend.read(f"{PLAN}/lock.json") is not None
    assert force_unlock(backend, PLAN, CORRUPT_LOCK_ID) is None
    assert backend.read(f"{PLAN}/lock.json") is None
    acquire(backend, PLAN, clock=clock)


def test_the_word_corrupt_never_removes_a_valid_lease(
    backend: StateBackend, clock: FakeClock
) -> None:
    """`unlock PLAN corrupt` on a readable lease is refused and leaves it in place."""
    lease = acquire(backend, PLAN, clock=clock)
    with pytest.raises(StateError, match="not corrupt") as refused:
        force_unlock(backend, PLAN, CORRUPT_LOCK_ID, plan_file="p.yaml")
    assert lease.lock_id not in str(refused.value)
    stored = read_lease(backend, PLAN)
    assert stored is not None and stored.lock_id == lease.lock_id


def test_heartbeat_renews_until_stopped(backend: StateBackend) -> None:
    """The heartbeat thread keeps renewing the lease until it is stopped."""
    lease = acquire(backend, PLAN)
    with Heartbeat(lease, interval=0.02) as heartbeat:
        wait_until(lambda: heartbeat.renewals >= 3, what="three renewals")
    count = heartbeat.renewals
    stored = read_lease(backend, PLAN)
    assert stored is not None and stored.expires == lease.info.expires
    assert heartbeat.renewals == count and not heartbeat.lost.is_set()
    heartbeat.check()


def test_heartbeat_is_quiet_after_release(backend: StateBackend) -> None:
    """Releasing the lease while the heartbeat runs is not reported as a loss."""
    lease = acquire(backend, PLAN)
    with Heartbeat(lease, interval=0.01) as heartbeat:
        wait_until(lambda: heartbeat.renewals >= 1, what="a renewal")
        assert lease.release() is True
    assert not heartbeat.lost.is_set()
    heartbeat.check()


def test_heartbeat_reports_a_lost_lease(backend: StateBackend, clock: FakeClock) -> None:
    """When the lease is taken over, the heartbeat stops and reports LeaseLost to its owner."""
    lease = acquire(backend, PLAN, clock=clock, ttl=10)
    reported: list[StateError] = []
    heartbeat = Heartbeat(lease, interval=0.02, on_lost=reported.append)
    # Take the lease over before the heartbeat starts, so its first renewal must fail.
    clock.advance(11)
    thief = acquire(backend, PLAN, clock=clock)
    with heartbeat:
        assert heartbeat.lost.wait(30)
    assert len(reported) == 1 and isinstance(reported[0], LeaseLost)
    assert thief.lock_id in str(reported[0])
    with pytest.raises(LeaseLost):
        heartbeat.check()


# ----------------------------------------------------------------------------- ledger


def test_ledger_round_trip_and_serial(backend: StateBackend, clock: FakeClock) -> None:
    """Saves bump the serial, keep the lineage, and read back equal to what was saved."""
    lease = acquire(backend, PLAN, clock=clock)
    writer = LedgerStore(backend, PLAN).claim(lease)
    assert writer.ledger is None and read_ledger(backend, PLAN) is None
    first = writer.save(_ledger())
    assert first.serial == 1 and first.lock_id == lease.lock_id
    entry = FileEntry(
        url="s3://datasets/products/part-0001.ndjson",
        fingerprint='size=1024;etag="abc"',
        size=1024,
        status="partial",
        resume={"byte_offset": 512, "line": 10},
        rows=10,
        bytes=512,
        wal_first=3,
        wal_last=7,
    )
    run = RunState(
        current_run_id="20261125T190000Z-abcdef",
        started=clock.now,
        last_acked_wal_sequence=7,
        upserts_acked=10,
        resends=1,
        verification=Verification("pending", None),
    )
    clock.advance(5)
    second = writer.save(first.with_file(entry).with_run(run))
    assert second.serial == 2 and second.lineage == first.lineage
    loaded = read_ledger(backend, PLAN)
    assert loaded == second
    assert loaded is not None and loaded.files[entry.url] == entry and loaded.updated == clock.now
    # A later run claims the ledger: the claim itself is a write (serial 3).
    lease.release()
    again = LedgerStore(backend, PLAN).claim(acquire(backend, PLAN, clock=clock))
    assert again.ledger is not None and again.ledger.serial == 3
    assert again.ledger.lineage == first.lineage


def test_ledger_save_after_takeover_is_fenced(backend: StateBackend, clock: FakeClock) -> None:
    """A writer whose lease was taken over cannot save; the new holder's ledger is untouched."""
    old_lease = acquire(backend, PLAN, clock=clock, ttl=10)
    old_writer = LedgerStore(backend, PLAN).claim(old_lease)
    base = old_writer.save(_ledger())
    clock.advance(11)
    new_lease = acquire(backend, PLAN, clock=clock)
    new_writer = LedgerStore(backend, PLAN).claim(new_lease)
    with pytest.raises(LeaseLost) as caught:
        old_writer.save(base.with_run(RunState(upserts_acked=999)))
    assert new_lease.lock_id in str(caught.value)
    current = read_ledger(backend, PLAN)
    assert current is not None and current.lock_id == new_lease.lock_id
    assert current.run.upserts_acked == 0
    assert new_writer.save(base).serial == current.serial + 1


class _InterleavingBackend(StateBackend):
    """A real backend that runs a hook once, right after the next read of a chosen key.

    It pins down the narrow interleavings between two ledger writers that
    timing alone would hit only rarely.
    """

    def __init__(self, inner: StateBackend) -> None:
        super().__init__(inner.url)
        self.inner = inner
        self._armed: tuple[str, Callable[[], None]] | None = None

    def arm(self, suffix: str, hook: Callable[[], None]) -> None:
        self._armed = (suffix, hook)

    def read(self, key: str) -> Versioned | None:
        got = self.inner.read(key)
        if self._armed is not None and key.endswith(self._armed[0]):
            hook = self._armed[1]
            self._armed = None
            hook()
        return got

    def _create(self, key: str, data: bytes) -> str:
        return self.inner.create(key, data)

    def _replace(self, key: str, data: bytes, expected_version: str) -> str:
        return self.inner.replace(key, data, expected_version)

    def _put(self, key: str, data: bytes) -> str:
        return self.inner.put(key, data)

    def delete(self, key: str, expected_version: str | None = None) -> None:
        self.inner.delete(key, expected_version)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)


def test_takeover_between_fence_check_and_write(backend: StateBackend, clock: FakeClock) -> None:
    """A claim landing between the old holder's lease check and its write fences that write."""
    racy = _InterleavingBackend(backend)
    old_lease = acquire(racy, PLAN, clock=clock, ttl=10)
    old_writer = LedgerStore(racy, PLAN).claim(old_lease)
    base = old_writer.save(_ledger())
    clock.advance(11)
    claimed: list[int] = []

    def take_over() -> None:
        writer = LedgerStore(backend, PLAN).claim(acquire(backend, PLAN, clock=clock))
        assert writer.ledger is not None
        claimed.append(writer.ledger.serial)

    racy.arm("lock.json", take_over)  # fires inside the old holder's fencing check
    with pytest.raises(LeaseLost):
        old_writer.save(base.with_run(RunState(upserts_acked=999)))
    assert claimed == [2]
    current = read_ledger(backend, PLAN)
    assert current is not None and current.serial == 2 and current.run.upserts_acked == 0


def test_late_write_is_kept_and_then_fenced(backend: StateBackend, clock: FakeClock) -> None:
    """An old holder's write that beats the new claim is kept under it; later ones are refused."""
    racy_old = _InterleavingBackend(backend)
    racy_new = _InterleavingBackend(backend)
    old_lease = acquire(racy_old, PLAN, clock=clock, ttl=10)
    old_writer = LedgerStore(racy_old, PLAN).claim(old_lease)
    base = old_writer.save(_ledger())
    clock.advance(11)
    old_checked, go_old, old_done = threading.Event(), threading.Event(), threading.Event()
    outcome: list[Ledger | BaseException] = []

    def pause_after_check() -> None:
        old_checked.set()
        assert go_old.wait(30)

    def old_save() -> None:
        try:
            outcome.append(old_writer.save(base.with_run(RunState(upserts_acked=7))))
        except BaseException as exc:  # re-raised in the main thread below
            outcome.append(exc)
        finally:
            old_done.set()

    def let_old_write() -> None:
        go_old.set()
        assert old_done.wait(30)

    racy_old.arm("lock.json", pause_after_check)
    thread = threading.Thread(target=old_save)
    thread.start()
    assert old_checked.wait(30)  # the old holder's fencing check has passed
    new_lease = acquire(racy_new, PLAN, clock=clock)
    racy_new.arm("state.json", let_old_write)  # old write lands after the claim's read
    new_writer = LedgerStore(racy_new, PLAN).claim(new_lease)
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], Ledger) and outcome[0].serial == 2
    assert new_writer.ledger is not None and new_writer.ledger.serial == 3
    assert new_writer.ledger.run.upserts_acked == 7  # the late write was kept
    assert new_writer.ledger.lock_id == new_lease.lock_id
    with pytest.raises(LeaseLost):
        old_writer.save(base)


def test_first_ledgers_race_one_create_wins(backend: StateBackend, clock: FakeClock) -> None:
    """Two writers that both saw no ledger: the second create is refused, nothing is lost."""
    lease = acquire(backend, PLAN, clock=clock)
    one = LedgerStore(backend, PLAN).claim(lease)
    two = LedgerStore(backend, PLAN).claim(lease)
    one.save(_ledger())
    with pytest.raises(StateError, match="changed by another writer"):
        two.save(_ledger())
    assert read_ledger(backend, PLAN) == one.ledger


def test_status_reads_ledger_lease_and_runs(backend: StateBackend, clock: FakeClock) -> None:
    """read_status reports file counts, rows and the lease holder from state alone."""
    assert read_status(backend, PLAN).ledger is None
    lease = acquire(backend, PLAN, clock=clock)
    writer = LedgerStore(backend, PLAN).claim(lease)
    ledger = _ledger()
    statuses: tuple[FileStatus, ...] = ("done", "done", "partial", "pending")
    for i, file_status in enumerate(statuses):
        ledger = ledger.with_file(
            FileEntry(
                url=f"file:///d/{i}.ndjson", fingerprint=f"size={i}", status=file_status, rows=i
            )
        )
    writer.save(ledger.with_run(RunState(current_run_id="20261125T190000Z-abcdef")))
    status = read_status(backend, PLAN, clock=clock)
    assert (status.files_done, status.files_partial, status.files_pending) == (2, 1, 1)
    assert status.rows == 6 and status.lease.info is not None
    assert status.lease.info.lock_id == lease.lock_id and not status.lease.expired
    assert not status.lease.holder_gone and status.last_run_id == "20261125T190000Z-abcdef"


# -------------------------------------------------------------------- records and runs


def test_namespace_record(backend: StateBackend, clock: FakeClock) -> None:
    """The namespace record keeps metric and dims, lists plans, and refuses a mismatch."""
    assert read_namespace_record(backend, "products") is None
    record_namespace_use(
        backend, "products", metric="cosine", vector_dims=None, plan_name="a", clock=clock
    )
    record = record_namespace_use(
        backend, "products", metric="cosine", vector_dims=768, plan_name="b", clock=clock
    )
    assert record.plans == ("a", "b") and record.vector_dims == 768
    assert read_namespace_record(backend, "products") == record
    with pytest.raises(StateError, match="mixing metrics across parts is unsupported"):
        record_namespace_use(
            backend, "products", metric="euclidean_squared", vector_dims=768, plan_name="c"
        )
    with pytest.raises(StateError, match="768-dimensional"):
        record_namespace_use(backend, "products", metric="cosine", vector_dims=384, plan_name="c")
    assert read_namespace_record(backend, "products") == record
    assert record.conflict("cosine", None) is None


def test_namespace_record_concurrent_plans(backend: StateBackend) -> None:
    """Plans recording the same namespace at once all end up in the record."""
    names = [f"plan-{i}" for i in range(4)]
    start = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            start.wait()
            record_namespace_use(backend, "shared", metric="cosine", vector_dims=8, plan_name=name)
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in names]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    record = read_namespace_record(backend, "shared")
    assert record is not None and sorted(record.plans) == names


def test_run_files(backend: StateBackend, clock: FakeClock) -> None:
    """Events, rejects and the summary round-trip; runs list oldest first."""
    assert last_run_id(backend, PLAN) is None
    first = new_run_id(clock)
    clock.advance(3600)
    second = new_run_id(clock)
    assert first < second
    run = RunFiles(backend, PLAN, second)
    run.append_events([{"event": "throttle", "lag": 9}, {"event": "resume", "lag": 2}])
    run.append_events([{"event": "retry", "status": 503}])
    run.append_rejects([{"file": "a.ndjson", "line": 3, "reason": "vector has 3 dims"}])
    run.write_summary("# Summary\n", {"rows": 10})
    RunFiles(backend, PLAN, first).write_summary("# Old\n", {"rows": 1})
    assert [e["event"] for e in run.read_events()] == ["throttle", "resume", "retry"]
    assert run.read_rejects() == [{"file": "a.ndjson", "line": 3, "reason": "vector has 3 dims"}]
    assert run.read_summary_markdown() == "# Summary\n"
    assert run.read_summary_record() == {"rows": 10}
    assert list_runs(backend, PLAN) == [first, second]
    assert last_run_id(backend, PLAN) == second
    assert RunFiles(backend, PLAN, new_run_id(clock)).read_events() == []
    # Runs started within one second still sort in start order (a resume right after a stop).
    same_second = []
    for _ in range(20):
        clock.advance(0.04)
        same_second.append(new_run_id(clock))
    assert same_second == sorted(same_second) and second < same_second[0]
    third = same_second[-1]
    assert second[:15] == third[:15]
    RunFiles(backend, PLAN, third).write_summary("# Third\n", {"rows": 2})
    assert last_run_id(backend, PLAN) == third
    # Ids from builds without milliseconds stay valid.
    RunFiles(backend, PLAN, "20200101T000000Z-abcdef").write_summary("# Older\n", {"rows": 0})
    assert list_runs(backend, PLAN)[0] == "20200101T000000Z-abcdef"
    with pytest.raises(StateError, match="not a run id"):
        RunFiles(backend, PLAN, "../etc")
