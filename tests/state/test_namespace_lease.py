"""The lease generalised to a key: a plan's lease and a namespace's lease, on every store kind.

The namespace lease (``namespaces/<ns>.lock``) is the plan lease's mechanics on another key:
these tests pin what differs (the key, the record's ``namespace``, the words and the unlock
command) and that the rest — takeover of a dead or expired holder, heartbeat, unlock by lock
id or ``corrupt`` — holds for it too.
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from elax_plan.errors import LeaseCorrupt, StateError
from elax_plan.state import (
    CORRUPT_LOCK_ID,
    Heartbeat,
    Holder,
    LeaseHeld,
    LeaseKey,
    LeaseLost,
    StateBackend,
    acquire,
    force_unlock,
    read_lease,
    read_status,
)
from tests.conftest import wait_until
from tests.state.conftest import FakeClock

NS = LeaseKey.namespace("products")


def _remote() -> Holder:
    return Holder(host="another-host.example", pid=4242, user="ops", start_time="1")


def test_keys_of_the_two_kinds() -> None:
    """A plan's lease is <plan>/lock.json, a namespace's is namespaces/<ns>.lock; a plan name
    means its own lease; a name that cannot be a key is refused when the key is made."""
    assert LeaseKey.plan("alpha").path == "alpha/lock.json"
    assert NS.path == "namespaces/products.lock"
    assert NS.file_name == "products.lock" and str(NS) == "namespace 'products'"
    assert NS.unlock_command("b.yaml", "ID") == "elax-plan unlock b.yaml --namespace ID"
    assert LeaseKey.plan("alpha").unlock_command(None, "ID") == "elax-plan unlock PLAN.yaml ID"
    for bad in ("a/b", ".hidden", ""):
        with pytest.raises(StateError):
            LeaseKey.namespace(bad)
    with pytest.raises(StateError):
        LeaseKey.plan("namespaces")


def test_the_record_says_which_namespace_and_the_plan_lease_is_unchanged(
    backend: StateBackend, clock: FakeClock
) -> None:
    """The namespace lease names the namespace and the holding plan; a plan lease's JSON has
    no namespace key (older builds read it as before)."""
    plan = acquire(backend, "alpha", clock=clock)
    ns = acquire(backend, "alpha", key=NS, clock=clock)
    ns_doc = orjson.loads(backend.read(NS.path).data)  # type: ignore[union-attr]
    plan_doc = orjson.loads(backend.read("alpha/lock.json").data)  # type: ignore[union-attr]
    assert ns_doc["namespace"] == "products" and ns_doc["plan"] == "alpha"
    assert "namespace" not in plan_doc
    assert ns.lease_key == NS and plan.lease_key == LeaseKey.plan("alpha")
    stored = read_lease(backend, NS)
    assert stored is not None and stored.lock_id == ns.lock_id and stored.key == NS
    assert ns.release() and read_lease(backend, NS) is None
    stored_plan = read_lease(backend, "alpha")
    assert stored_plan is not None and stored_plan.lock_id == plan.lock_id


def test_a_second_plan_is_refused_naming_the_plan_holder_and_unlock(
    backend: StateBackend, clock: FakeClock
) -> None:
    """Two plans each hold their own plan lease; the namespace lease is one plan's only, and
    the other's refusal names that plan, its holder, since when and both ways on."""
    acquire(backend, "alpha", clock=clock)
    first = acquire(backend, "alpha", key=NS, clock=clock, holder=_remote())
    acquire(backend, "beta", clock=clock)  # plan leases do not conflict
    with pytest.raises(LeaseHeld) as caught:
        acquire(backend, "beta", key=NS, clock=clock, plan_file="beta.yaml")
    message = str(caught.value)
    assert "Namespace 'products' is being written by plan 'alpha'" in message, message
    assert "user ops on host another-host.example (pid 4242)" in message
    assert f"since {first.info.since}" in message and first.lock_id in message
    assert "--lock-timeout" in message and "H1" in message
    assert f"elax-plan unlock beta.yaml --namespace {first.lock_id}" in message
    assert caught.value.info.plan == "alpha"


def test_waiting_gives_up_after_the_wait(backend: StateBackend) -> None:
    """With ``wait`` the namespace lease is polled; held throughout, LeaseHeld says so."""
    acquire(backend, "alpha", key=NS, holder=_remote())
    seen: list[str] = []
    with pytest.raises(LeaseHeld, match="after waiting"):
        acquire(
            backend,
            "beta",
            key=NS,
            wait=0.1,
            poll_interval=0.02,
            on_wait=lambda i: seen.append(i.plan),
        )
    assert seen and set(seen) == {"alpha"}


def test_expired_and_dead_holders_are_taken_over(backend: StateBackend, clock: FakeClock) -> None:
    """Expiry and a dead holder on this host free a namespace lease exactly as a plan lease."""
    old = acquire(backend, "alpha", key=NS, clock=clock, ttl=30, holder=_remote())
    clock.advance(30)
    new = acquire(backend, "beta", key=NS, clock=clock)
    assert new.taken_over is not None and new.taken_over.lock_id == old.lock_id
    new.release()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        dead = acquire(backend, "alpha", key=NS, clock=clock, holder=Holder.of_process(child.pid))
        with pytest.raises(LeaseHeld):
            acquire(backend, "beta", key=NS, clock=clock)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    taken = acquire(backend, "beta", key=NS, clock=clock)  # no time has passed
    assert taken.taken_over is not None and taken.taken_over.lock_id == dead.lock_id


def test_force_unlock_by_lock_id_and_corrupt(backend: StateBackend, clock: FakeClock) -> None:
    """unlock --namespace: a wrong id is refused without the right one; the right one frees
    it; a namespace lock that is no lease goes only with `corrupt`, which names --namespace."""
    held = acquire(backend, "alpha", key=NS, clock=clock, holder=_remote())
    with pytest.raises(StateError, match="not locked"):
        force_unlock(backend, LeaseKey.namespace("other"), held.lock_id)
    with pytest.raises(StateError) as wrong:
        force_unlock(backend, NS, "nope", plan_file="b.yaml")
    assert held.lock_id not in str(wrong.value)
    assert "elax-plan unlock b.yaml --namespace LOCK_ID" in str(wrong.value)
    removed = force_unlock(backend, NS, held.lock_id)
    assert removed is not None and removed.plan == "alpha" and read_lease(backend, NS) is None
    backend.create(NS.path, b"{ cut")
    with pytest.raises(LeaseCorrupt) as blocked:
        acquire(backend, "beta", key=NS, clock=clock, plan_file="b.yaml")
    assert f"elax-plan unlock b.yaml --namespace {CORRUPT_LOCK_ID}" in str(blocked.value)
    with pytest.raises(StateError, match="corrupt"):
        force_unlock(backend, NS, "00000000", plan_file="b.yaml")
    assert force_unlock(backend, NS, CORRUPT_LOCK_ID) is None
    assert backend.read(NS.path) is None


def test_status_shows_the_namespace_lease(backend: StateBackend, clock: FakeClock) -> None:
    """read_status with the plan's namespace reports who writes into it, separately from the
    plan's own lease."""
    held = acquire(backend, "alpha", key=NS, clock=clock, holder=_remote())
    status = read_status(backend, "beta", namespace="products", clock=clock)
    assert status.lease.info is None
    assert status.namespace_lease is not None and status.namespace_lease.info is not None
    assert status.namespace_lease.info.lock_id == held.lock_id
    assert status.namespace_lease.key == NS and not status.namespace_lease.expired
    assert read_status(backend, "beta", clock=clock).namespace_lease is None


def test_heartbeat_renews_an_added_lease(backend: StateBackend) -> None:
    """The run's one heartbeat also renews the namespace lease it is given once running."""
    plan = acquire(backend, "alpha")
    ns = acquire(backend, "alpha", key=NS)
    with Heartbeat(plan, interval=0.02) as heartbeat:
        heartbeat.add(ns)

        def renewed() -> bool:
            stored = read_lease(backend, NS)
            return stored is not None and stored.renewed > stored.created

        wait_until(renewed, what="a renewal of the namespace lease")
    assert not heartbeat.lost.is_set()


def test_heartbeat_reports_a_lost_namespace_lease_and_keeps_the_plan_lease(
    backend: StateBackend, clock: FakeClock
) -> None:
    """A namespace lease taken over is reported as lost; the plan lease is still renewed (the
    run needs it to save its checkpoint while it stops)."""
    plan = acquire(backend, "alpha", clock=clock, ttl=10)
    ns = acquire(backend, "alpha", key=NS, clock=clock, ttl=10)
    reported: list[StateError] = []
    heartbeat = Heartbeat(plan, interval=0.02, on_lost=reported.append)
    heartbeat.add(ns)
    # Taken over before the heartbeat starts, so its first renewal of it must fail.
    clock.advance(11)
    thief = acquire(backend, "beta", key=NS, clock=clock, holder=_remote())
    with heartbeat:
        assert heartbeat.lost.wait(30)
        before = heartbeat.renewals
        wait_until(lambda: heartbeat.renewals > before + 2, what="the plan lease still renewed")
    assert len(reported) == 1 and isinstance(reported[0], LeaseLost)
    assert "namespace 'products'" in str(reported[0]) and thief.lock_id in str(reported[0])
    stored = read_lease(backend, "alpha")
    assert stored is not None and stored.lock_id == plan.lock_id
    with pytest.raises(LeaseLost):
        heartbeat.check()
