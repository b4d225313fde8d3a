"""Clock skew between two hosts sharing a lease, with injected clocks.

The lease code takes its wall clock as a parameter (``acquire(..., clock=)``, kept by the
``Lease`` for renewals), so each host here gets its own ``FakeClock``: the same true instant
reads differently on each. ``lease``'s docstring states the assumption: "Expiry compares wall
clocks across hosts, so it assumes clocks agree to well within the TTL". Concretely, a lease
written by host A expires at A's ``now + ttl``, and host B takes it over when B's clock reads
at least that (``LeaseInfo.expired``: ``now >= expires``). So a skew below the TTL minus the
time since A's last renewal never breaks a live lease; a skew of the TTL or more breaks it at
once — and A learns so at its next renewal (``LeaseLost``), never silently.

Both holders are remote hosts (not this machine), so only expiry can break their leases.
"""

from __future__ import annotations

import pytest

from elax_plan.state import Holder, LeaseHeld, LeaseLost, StateBackend, acquire, read_lease
from tests.state.conftest import FakeClock

TTL = 60.0
RENEW = 10.0  # the default renew interval, relative to the default TTL


def _host(name: str) -> Holder:
    return Holder(host=f"{name}.example", pid=4242, user="ops", start_time="1")


HOST_A, HOST_B = _host("host-a"), _host("host-b")


@pytest.mark.parametrize("skew", [0.0, 1.0, TTL / 2, TTL - 0.001])
def test_a_host_ahead_by_less_than_the_ttl_does_not_take_a_fresh_lease(
    backend: StateBackend, skew: float
) -> None:
    """Right after A takes the lease, B's clock runs ahead by less than the TTL: B is refused
    (LeaseHeld naming A), and A's lease is untouched and still renews."""
    clock_a = FakeClock()
    clock_b = FakeClock(clock_a.now + skew)
    held = acquire(backend, "alpha", ttl=TTL, clock=clock_a, holder=HOST_A)
    with pytest.raises(LeaseHeld) as refused:
        acquire(backend, "alpha", ttl=TTL, clock=clock_b, holder=HOST_B)
    assert "host-a.example" in str(refused.value), str(refused.value)
    stored = read_lease(backend, "alpha")
    assert stored is not None and stored.lock_id == held.lock_id
    held.renew()  # nobody wrote the lock file meanwhile


@pytest.mark.parametrize("skew", [TTL, TTL + 0.001, 10 * TTL])
def test_a_host_ahead_by_the_ttl_or_more_takes_a_live_lease_and_the_holder_learns_it(
    backend: StateBackend, skew: float
) -> None:
    """Past the assumption: B, ahead by the TTL or more, judges A's fresh lease expired and
    takes it over; A is told at its next renewal (LeaseLost naming B), not silently."""
    clock_a = FakeClock()
    clock_b = FakeClock(clock_a.now + skew)
    held = acquire(backend, "alpha", ttl=TTL, clock=clock_a, holder=HOST_A)
    taken = acquire(backend, "alpha", ttl=TTL, clock=clock_b, holder=HOST_B)
    assert taken.taken_over is not None and taken.taken_over.lock_id == held.lock_id
    with pytest.raises(LeaseLost) as lost:
        held.renew()
    assert "host-b.example" in str(lost.value), str(lost.value)
    with pytest.raises(LeaseLost):
        held.verify()


@pytest.mark.parametrize(("skew", "stolen"), [(TTL - RENEW - 0.001, False), (TTL - RENEW, True)])
def test_with_renewals_the_margin_is_the_ttl_less_the_renew_interval(
    backend: StateBackend, skew: float, stolen: bool
) -> None:
    """A renews every RENEW seconds; B, ahead by ``skew``, tries at the worst instant (just
    before each renewal). Below TTL - RENEW, B never takes the lease over six beats; at
    TTL - RENEW, it takes it at the first beat's end (A's clock reads only RENEW seconds past
    its last renewal)."""
    clock_a = FakeClock()
    clock_b = FakeClock(clock_a.now + skew)
    held = acquire(backend, "alpha", ttl=TTL, clock=clock_a, holder=HOST_A)
    for _beat in range(6):
        for clock in (clock_a, clock_b):
            clock.advance(RENEW)  # one true interval passes on both hosts
        try:
            acquire(backend, "alpha", ttl=TTL, clock=clock_b, holder=HOST_B)
        except LeaseHeld:
            held.renew()
            continue
        assert stolen, f"B took a live lease, {skew}s ahead, {clock_a.now - 1_795_000_000}s in"
        with pytest.raises(LeaseLost):
            held.renew()
        return
    assert not stolen, "B never took the lease"


def test_a_host_behind_waits_for_its_own_clock_to_pass_the_expiry(backend: StateBackend) -> None:
    """A's run is gone (it stopped renewing). B's clock runs 100 s behind: B takes the lease
    over only when its own clock passes A's expiry — 100 s later than a host with A's clock —
    never earlier."""
    lag = 100.0
    clock_a = FakeClock()
    clock_b = FakeClock(clock_a.now - lag)
    held = acquire(backend, "alpha", ttl=TTL, clock=clock_a, holder=HOST_A)
    clock_b.advance(TTL)  # A's clock would read expiry now
    with pytest.raises(LeaseHeld):
        acquire(backend, "alpha", ttl=TTL, clock=clock_b, holder=HOST_B)
    clock_b.advance(lag - 0.001)
    with pytest.raises(LeaseHeld):
        acquire(backend, "alpha", ttl=TTL, clock=clock_b, holder=HOST_B)
    clock_b.advance(0.001)
    taken = acquire(backend, "alpha", ttl=TTL, clock=clock_b, holder=HOST_B)
    assert taken.taken_over is not None and taken.taken_over.lock_id == held.lock_id
