"""The lease mechanics: who may hold a key (a plan's ledger, or the writes into a namespace),
and for how long.

Owns taking, renewing, releasing and force-releasing a lease, and judging whether
a holder is gone. What a lease locks and what it says is ``lease_info``
(``LeaseKey``: the plan lease ``<plan>/lock.json`` or the namespace lease
``namespaces/<ns>.lock``); both kinds follow exactly these rules. It must not touch
the ledger (``ledger`` fences its writes with ``Lease.verify``) and must never wait on
anything but the lease.

Rules (SPEC §6):

* ``acquire`` creates the lock file only if absent (``StateBackend.create``).
* An existing lease is taken over by compare-and-swap on *the exact version
  that was judged* — so of two processes that both see it expired, one wins
  and the other re-reads and finds a live lease — when it has expired by our
  clock, or at once when its holder ran on this machine and that process no
  longer exists. "This machine" means the same host name, boot id and PID
  namespace, so a container sharing a host name or a rebooted host never has
  its lease broken early; the process start time from ``/proc/<pid>/stat``
  catches a PID that was reused by another process.
* Otherwise ``LeaseHeld`` (a ``StateError``) names the holder (and, for a namespace,
  the plan it writes for), the lock id and how to force it, after polling up to
  ``wait`` seconds.
* A lock file that is no lease (``LeaseCorrupt``) has no lock id to match, so
  ``force_unlock`` removes it only when given the literal ``CORRUPT_LOCK_ID``
  (``elax-plan unlock PLAN [--namespace] corrupt``), and only that exact, unreadable
  version of it: a readable lease is never removed by that word.
* ``renew`` is a compare-and-swap from the version we last wrote: if anyone
  else has written the lock file since, the lease was taken from us and
  ``LeaseLost`` is raised. ``Heartbeat`` renews in a thread and reports a loss
  to its owner instead of dying silently.
* Expiry compares wall clocks across hosts, so it assumes clocks agree to well
  within the TTL (60 s by default), as any lease on object storage must.

Requests that are retried by the S3 client after their first attempt landed
come back as conflicts whose current bytes are ours; every conditional write
here recognises its own bytes (the lock id makes them unique).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable

from elax_plan.errors import Conflict, LeaseCorrupt, LeaseHeld, LeaseLost, StateError
from elax_plan.retry import Interrupted
from elax_plan.state.backend import StateBackend
from elax_plan.state.holder import Holder, holder_is_gone
from elax_plan.state.layout import Clock
from elax_plan.state.lease_info import (
    CORRUPT_LOCK_ID,
    LeaseInfo,
    LeaseKey,
    ago,
    as_key,
    status_command,
)

DEFAULT_TTL = 60.0
DEFAULT_RENEW_INTERVAL = 10.0
DEFAULT_POLL_INTERVAL = 1.0


def lease_location(backend: StateBackend, what: str | LeaseKey) -> str:
    """Where a lease (a plan name: that plan's) is, for messages."""
    return backend.location(as_key(what).path)


def read_lease(
    backend: StateBackend, what: str | LeaseKey, *, plan_file: str | None = None
) -> LeaseInfo | None:
    """The current lease on ``what`` (a plan name: that plan's lease), or ``None`` when it is
    free; ``LeaseCorrupt`` if the lock file is no lease."""
    key = as_key(what)
    current = backend.read(key.path)
    if current is None:
        return None
    return LeaseInfo.from_json(current.data, backend.location(key.path), plan_file, key)


# --------------------------------------------------------------------------- lease


class Lease:
    """A held lease. Thread-safe: the heartbeat renews while the owner saves and releases."""

    def __init__(
        self,
        backend: StateBackend,
        info: LeaseInfo,
        version: str,
        *,
        ttl: float,
        clock: Clock,
        taken_over: LeaseInfo | None = None,
    ) -> None:
        self.backend = backend
        self.lease_key = info.key
        self.key = self.lease_key.path
        self.ttl = ttl
        self.clock = clock
        self.taken_over = taken_over
        """The expired or orphaned lease this one replaced, if any (worth a log line)."""
        self._info = info
        self._version = version
        self._mutex = threading.Lock()
        self._released = False

    @property
    def lock_id(self) -> str:
        return self._info.lock_id

    @property
    def plan(self) -> str:
        return self._info.plan

    @property
    def info(self) -> LeaseInfo:
        with self._mutex:
            return self._info

    @property
    def released(self) -> bool:
        with self._mutex:
            return self._released

    @property
    def location(self) -> str:
        return self.backend.location(self.key)

    def _lost(self, current: LeaseInfo | None, why: str) -> LeaseLost:
        now = self.clock()
        if current is None:
            detail = (
                f"{self.lease_key.file_name} is gone (force-released with `elax-plan unlock`?)."
            )
        else:
            detail = f"It is now held: {current.describe(now)}."
        return LeaseLost(
            f"This run lost the lease on {self.lease_key} (lock id {self.lock_id}) {why}.",
            detail,
            "Nothing more is written by this run; the state stays consistent."
            " Run apply again to resume once the other run has finished.",
        )

    def _parse(self, data: bytes) -> LeaseInfo:
        return LeaseInfo.from_json(data, self.location, key=self.lease_key)

    def renew(self) -> LeaseInfo:
        """Push ``expires`` to now + ttl; ``LeaseLost`` if someone else wrote the lock since."""
        with self._mutex:
            if self._released:
                raise self._lost(None, "before renewing: it was already released")
            now = self.clock()
            renewed = dataclasses.replace(self._info, renewed=now, expires=now + self.ttl).stored()
            data = renewed.to_json()
            try:
                version = self.backend.replace(self.key, data, self._version)
            except Conflict as exc:
                if exc.current is not None and exc.current.data == data:
                    version = exc.current.version  # our retried write had landed
                else:
                    current = None if exc.current is None else self._parse(exc.current.data)
                    raise self._lost(current, "while renewing it") from None
            self._info, self._version = renewed, version
            return renewed

    def verify(self) -> None:
        """Fencing check: ``LeaseLost`` unless the lock file still carries our lock id."""
        current = self.backend.read(self.key)
        info = None if current is None else self._parse(current.data)
        if info is None or info.lock_id != self.lock_id:
            raise self._lost(info, "before this write")

    def release(self) -> bool:
        """Delete the lock file if it is still ours. False when it no longer was (nothing
        deleted); a second call is a no-op that returns False."""
        with self._mutex:
            if self._released:
                return False
            self._released = True
            while True:
                current = self.backend.read(self.key)
                if current is None or self._parse(current.data).lock_id != self.lock_id:
                    return False
                try:
                    # Conditional delete, so a takeover between the read and the
                    # delete is never removed.
                    self.backend.delete(self.key, expected_version=current.version)
                except Conflict:
                    continue
                return True


# ------------------------------------------------------------------------- acquire


def acquire(
    backend: StateBackend,
    plan_name: str,
    operation: str = "apply",
    *,
    key: LeaseKey | None = None,
    ttl: float = DEFAULT_TTL,
    wait: float = 0.0,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    clock: Clock = time.time,
    holder: Holder | None = None,
    plan_file: str | None = None,
    on_wait: Callable[[LeaseInfo], None] | None = None,
    stop: threading.Event | None = None,
) -> Lease:
    """Take the lease on ``key`` for ``plan_name``'s run, or raise ``LeaseHeld`` after waiting
    up to ``wait`` seconds.

    ``key`` defaults to the plan's own lease; ``LeaseKey.namespace(ns)`` takes the namespace
    lease instead, with the same rules. ``holder`` defaults to this process; ``plan_file``
    only makes messages name the exact unlock command; ``on_wait`` is called each time the
    lease is found held while waiting (the CLI says "waiting for …"); ``stop`` set while
    waiting ends the wait with ``Interrupted`` (Ctrl-C must not wait out --lock-timeout).
    """
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    key = key or LeaseKey.plan(plan_name)
    location = backend.location(key.path)
    me = holder or Holder.current()
    deadline = time.monotonic() + max(0.0, wait)

    def new_info() -> LeaseInfo:
        now = clock()
        return LeaseInfo(
            lock_id=str(uuid.uuid4()),
            plan=plan_name,
            operation=operation,
            holder=me,
            created=now,
            renewed=now,
            expires=now + ttl,
            namespace=key.name if key.kind == "namespace" else None,
        ).stored()

    while True:
        current = backend.read(key.path)
        info = new_info()
        data = info.to_json()
        if current is None:
            try:
                version = backend.create(key.path, data)
            except Conflict as exc:
                if exc.current is not None and exc.current.data == data:
                    version = exc.current.version  # our retried create had landed
                else:
                    continue  # someone else was faster: judge their lease
            return Lease(backend, info, version, ttl=ttl, clock=clock)

        existing = LeaseInfo.from_json(current.data, location, plan_file, key)
        if existing.expired(clock()) or holder_is_gone(existing.holder):
            try:
                version = backend.replace(key.path, data, current.version)
            except Conflict as exc:
                if exc.current is not None and exc.current.data == data:
                    version = exc.current.version
                else:
                    continue  # another process took it over (or released it) first
            return Lease(backend, info, version, ttl=ttl, clock=clock, taken_over=existing)

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _held(key, existing, location, clock(), wait, plan_file)
        if on_wait is not None:
            on_wait(existing)
        if stop is None:
            time.sleep(min(poll_interval, remaining))
        elif stop.wait(min(poll_interval, remaining)):
            raise Interrupted(f"stopped while waiting for the lease on {key}")


def _held(
    key: LeaseKey,
    existing: LeaseInfo,
    location: str,
    now: float,
    wait: float,
    plan_file: str | None,
) -> LeaseHeld:
    """Who holds ``key``, since when, and the two ways on: wait, or unlock a dead holder."""
    waited = f" after waiting {ago(wait)}" if wait > 0 else ""
    unlock = key.unlock_command(plan_file, existing.lock_id)
    if key.kind == "namespace":
        return LeaseHeld(
            f"Namespace '{key.name}' is being written by plan '{existing.plan}'{waited}: "
            f"{existing.describe(now)}.",
            f"Only one plan writes into a namespace at a time: two writers lose writes on a"
            f" real node (hazard H1). The namespace lease is {location}.",
            "Wait for that run to finish (apply --lock-timeout waits for it). If that process"
            f" is gone for good, release the namespace lease with: {unlock}",
            existing,
        )
    return LeaseHeld(
        f"Plan '{key.name}' is locked by another run{waited}: {existing.describe(now)}.",
        f"The lease is {location}.",
        "Wait for that run to finish (apply --lock-timeout waits for it). If that"
        f" process is gone for good, release the lease with: {unlock}",
        existing,
    )


def force_unlock(
    backend: StateBackend,
    what: str | LeaseKey,
    lock_id: str,
    *,
    plan_file: str | None = None,
    clock: Clock = time.time,
) -> LeaseInfo | None:
    """Delete the lease on ``what`` (a plan name: that plan's) if its lock id is ``lock_id``;
    the lease that was removed.

    ``lock_id`` ``CORRUPT_LOCK_ID`` removes a lock file that is no lease (and returns
    None): that unreadable version only, never a lease. Refuses (``StateError``) when
    nothing is locked or another lease holds it.
    """
    key = as_key(what)
    location = backend.location(key.path)
    current = backend.read(key.path)
    title = str(key)[0].upper() + str(key)[1:]
    if current is None:
        raise StateError(
            f"{title} is not locked: there is no lease at {location}.",
            None,
            "Nothing to unlock. If apply still reports a lease, check that it uses the same"
            " state.uri.",
        )
    try:
        info = LeaseInfo.from_json(current.data, location, plan_file, key)
    except LeaseCorrupt as exc:
        if lock_id.strip() != CORRUPT_LOCK_ID:
            raise StateError(
                f"Refusing to unlock {key} with lock id {lock_id}: the lease at"
                f" {location} is corrupt ({exc.reason}), so it has no lock id to match.",
                None,
                exc.hint,
            ) from None
        _delete_judged(backend, key, current.version, location, plan_file)
        return None
    if lock_id.strip() == CORRUPT_LOCK_ID:
        raise StateError(
            f"Refusing to unlock {key}: its lease at {location} is readable, not corrupt"
            f" ('{CORRUPT_LOCK_ID}' only removes a {key.file_name} that is no lease).",
            f"The lease is held: {info.describe(clock(), with_lock_id=False)}.",
            _look_up_the_lock_id(key, plan_file),
        )
    if info.lock_id != lock_id.strip():
        # Never the right id here: a guess would be answered with the key to the lease.
        raise StateError(
            f"Refusing to unlock {key}: lock id {lock_id} is not its lease's.",
            f"The lease is held: {info.describe(clock(), with_lock_id=False)}.",
            _look_up_the_lock_id(key, plan_file),
        )
    _delete_judged(backend, key, current.version, location, plan_file)
    return info


def _look_up_the_lock_id(key: LeaseKey, plan_file: str | None) -> str:
    return (
        f"Make sure that run is gone, then look up the lease's lock id with"
        f" `{status_command(plan_file)}` and pass it to"
        f" `{key.unlock_command(plan_file, 'LOCK_ID')}`."
    )


def _delete_judged(
    backend: StateBackend,
    key: LeaseKey,
    version: str,
    location: str,
    plan_file: str | None,
) -> None:
    """Delete the lock file only as it was read and judged (``version``)."""
    try:
        backend.delete(key.path, expected_version=version)
    except Conflict:
        raise StateError(
            f"The lease on {key} changed while it was being unlocked.",
            f"See {location}: it was renewed, released or replaced.",
            f"Check `{status_command(plan_file)}` and run unlock again with what it shows.",
        ) from None
