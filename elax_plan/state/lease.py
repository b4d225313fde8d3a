"""The lease (``<plan>/lock.json``): who may write a plan's ledger, and for how long.

Owns taking, renewing, releasing and force-releasing the lease, and judging
whether a holder is gone. It must not touch the ledger (``ledger`` fences its
writes with ``Lease.verify``) and must never wait on anything but the lease.

Rules (SPEC §6):

* ``acquire`` creates ``lock.json`` only if absent (``StateBackend.create``).
* An existing lease is taken over by compare-and-swap on *the exact version
  that was judged* — so of two processes that both see it expired, one wins
  and the other re-reads and finds a live lease — when it has expired by our
  clock, or at once when its holder ran on this machine and that process no
  longer exists. "This machine" means the same host name, boot id and PID
  namespace, so a container sharing a host name or a rebooted host never has
  its lease broken early; the process start time from ``/proc/<pid>/stat``
  catches a PID that was reused by another process.
* Otherwise ``LeaseHeld`` (a ``StateError``) names the holder and the lock id
  and how to force it, after polling up to ``wait`` seconds.
* A ``lock.json`` that is no lease (``LeaseCorrupt``) has no lock id to match, so
  ``force_unlock`` removes it only when given the literal ``CORRUPT_LOCK_ID``
  (``elax-plan unlock PLAN corrupt``), and only that exact, unreadable version of
  it: a readable lease is never removed by that word.
* ``renew`` is a compare-and-swap from the version we last wrote: if anyone
  else has written ``lock.json`` since, the lease was taken from us and
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
from dataclasses import dataclass

from elax_plan.errors import Conflict, LeaseCorrupt, LeaseHeld, LeaseLost, StateError
from elax_plan.state.backend import StateBackend
from elax_plan.state.holder import Holder, holder_is_gone
from elax_plan.state.layout import Clock, dumps, iso, loads_object, lock_key, parse_iso

LOCK_VERSION = 1
DEFAULT_TTL = 60.0
DEFAULT_RENEW_INTERVAL = 10.0
DEFAULT_POLL_INTERVAL = 1.0
CORRUPT_LOCK_ID = "corrupt"
"""What ``unlock`` takes instead of a lock id to remove a ``lock.json`` that is no lease."""


# ---------------------------------------------------------------------- lease info


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """The content of ``lock.json``; times are epoch seconds."""

    lock_id: str
    plan: str
    operation: str
    holder: Holder
    created: float
    renewed: float
    expires: float

    def expired(self, now: float) -> bool:
        return now >= self.expires

    @property
    def since(self) -> str:
        """When the lease was taken, ISO 8601 UTC."""
        return iso(self.created)

    def describe(self, now: float, *, with_lock_id: bool = True) -> str:
        """Operation, holder, since when, (lock id,) and when the lease expires."""
        left = self.expires - now
        expiry = (
            f"expired {_ago(-left)} ago" if left <= 0 else f"expires in {_ago(left)} unless renewed"
        )
        lock_id = f", lock id {self.lock_id}" if with_lock_id else ""
        return (
            f"{self.operation} by {self.holder.describe()} since {self.since}{lock_id};"
            f" the lease {expiry}"
        )

    def stored(self) -> LeaseInfo:
        """This lease as it reads back from ``lock.json`` (times to the millisecond)."""
        return LeaseInfo.from_json(self.to_json(), "lock.json")

    def to_json(self) -> bytes:
        return dumps(
            {
                "lock_version": LOCK_VERSION,
                "lock_id": self.lock_id,
                "plan": self.plan,
                "operation": self.operation,
                "holder": self.holder.to_dict(),
                "created": iso(self.created),
                "renewed": iso(self.renewed),
                "expires": iso(self.expires),
            }
        )

    @classmethod
    def from_json(cls, data: bytes, location: str, plan_file: str | None = None) -> LeaseInfo:
        """The lease in ``data``; ``LeaseCorrupt`` (naming ``plan_file``'s unlock) if it is none."""
        try:
            raw = loads_object(data, location, "lease")
        except StateError as exc:
            reason = exc.summary.removeprefix(f"The lease at {location} is ").rstrip(".")
            raise corrupt_lease(location, reason, plan_file) from None
        version = raw.get("lock_version")
        if isinstance(version, int) and version > LOCK_VERSION:
            raise StateError(
                f"The lease at {location} was written by a newer elax-plan"
                f" (lock_version {version}).",
                None,
                "Upgrade elax-plan to work with this state.",
            )
        try:
            if version != LOCK_VERSION:
                raise ValueError(f"lock_version is {version!r}")
            lock_id, plan, operation = raw["lock_id"], raw["plan"], raw["operation"]
            if not all(isinstance(v, str) for v in (lock_id, plan, operation)):
                raise ValueError("lock_id, plan and operation must be strings")
            return cls(
                lock_id=lock_id,
                plan=plan,
                operation=operation,
                holder=Holder.from_dict(raw["holder"]),
                created=parse_iso(raw["created"]),
                renewed=parse_iso(raw["renewed"]),
                expires=parse_iso(raw["expires"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise corrupt_lease(
                location, f"not a valid elax-plan lease ({exc})", plan_file
            ) from None


def corrupt_lease(location: str, reason: str, plan_file: str | None) -> LeaseCorrupt:
    """The error for a ``lock.json`` that is no lease: what is wrong and the command to clear it."""
    return LeaseCorrupt(
        f"The lease at {location} is corrupt: {reason}.",
        "It was edited by hand, cut short, or written by another tool, so it has no lock id.",
        "If no elax-plan run is active for this plan, remove it with `"
        + _unlock_command(plan_file, CORRUPT_LOCK_ID)
        + "`.",
        reason,
    )


def _ago(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def lease_location(backend: StateBackend, plan_name: str) -> str:
    """Where the plan's ``lock.json`` is, for messages."""
    return backend.location(lock_key(plan_name))


def read_lease(
    backend: StateBackend, plan_name: str, *, plan_file: str | None = None
) -> LeaseInfo | None:
    """The plan's current lease, or ``None`` when it is not locked; ``LeaseCorrupt`` if
    ``lock.json`` is no lease."""
    key = lock_key(plan_name)
    current = backend.read(key)
    if current is None:
        return None
    return LeaseInfo.from_json(current.data, backend.location(key), plan_file)


def _unlock_command(plan_file: str | None, lock_id: str) -> str:
    return f"elax-plan unlock {plan_file or 'PLAN.yaml'} {lock_id}"


def _status_command(plan_file: str | None) -> str:
    return f"elax-plan status {plan_file or 'PLAN.yaml'}"


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
        self.key = lock_key(info.plan)
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
            detail = "lock.json is gone (force-released with `elax-plan unlock`?)."
        else:
            detail = f"It is now held: {current.describe(now)}."
        return LeaseLost(
            f"This run lost the lease on plan '{self.plan}' (lock id {self.lock_id}) {why}.",
            detail,
            "Nothing more is written by this run; the state stays consistent."
            " Run apply again to resume once the other run has finished.",
        )

    def _parse(self, data: bytes) -> LeaseInfo:
        return LeaseInfo.from_json(data, self.location)

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
        """Fencing check: ``LeaseLost`` unless ``lock.json`` still carries our lock id."""
        current = self.backend.read(self.key)
        info = None if current is None else self._parse(current.data)
        if info is None or info.lock_id != self.lock_id:
            raise self._lost(info, "before this write")

    def release(self) -> bool:
        """Delete ``lock.json`` if it is still ours. False when it no longer was (nothing
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
    ttl: float = DEFAULT_TTL,
    wait: float = 0.0,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    clock: Clock = time.time,
    holder: Holder | None = None,
    plan_file: str | None = None,
    on_wait: Callable[[LeaseInfo], None] | None = None,
) -> Lease:
    """Take the plan's lease or raise ``LeaseHeld`` after waiting up to ``wait`` seconds.

    ``holder`` defaults to this process; ``plan_file`` only makes messages
    name the exact unlock command; ``on_wait`` is called each time the lease
    is found held while waiting (the CLI says "waiting for …").
    """
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    key = lock_key(plan_name)
    location = backend.location(key)
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
        ).stored()

    while True:
        current = backend.read(key)
        info = new_info()
        data = info.to_json()
        if current is None:
            try:
                version = backend.create(key, data)
            except Conflict as exc:
                if exc.current is not None and exc.current.data == data:
                    version = exc.current.version  # our retried create had landed
                else:
                    continue  # someone else was faster: judge their lease
            return Lease(backend, info, version, ttl=ttl, clock=clock)

        existing = LeaseInfo.from_json(current.data, location, plan_file)
        if existing.expired(clock()) or holder_is_gone(existing.holder):
            try:
                version = backend.replace(key, data, current.version)
            except Conflict as exc:
                if exc.current is not None and exc.current.data == data:
                    version = exc.current.version
                else:
                    continue  # another process took it over (or released it) first
            return Lease(backend, info, version, ttl=ttl, clock=clock, taken_over=existing)

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            waited = f" after waiting {_ago(wait)}" if wait > 0 else ""
            raise LeaseHeld(
                f"Plan '{plan_name}' is locked by another run{waited}: "
                f"{existing.describe(clock())}.",
                f"The lease is {location}.",
                "Wait for that run to finish (apply --lock-timeout waits for it). If that"
                " process is gone for good, release the lease with: "
                + _unlock_command(plan_file, existing.lock_id),
                existing,
            )
        if on_wait is not None:
            on_wait(existing)
        time.sleep(min(poll_interval, remaining))


def force_unlock(
    backend: StateBackend,
    plan_name: str,
    lock_id: str,
    *,
    plan_file: str | None = None,
    clock: Clock = time.time,
) -> LeaseInfo | None:
    """Delete the plan's lease if its lock id is ``lock_id``; the lease that was removed.

    ``lock_id`` ``CORRUPT_LOCK_ID`` removes a ``lock.json`` that is no lease (and returns
    None): that unreadable version only, never a lease. Refuses (``StateError``) when the
    plan is not locked or another lease holds it.
    """
    key = lock_key(plan_name)
    location = backend.location(key)
    current = backend.read(key)
    if current is None:
        raise StateError(
            f"Plan '{plan_name}' is not locked: there is no lease at {location}.",
            None,
            "Nothing to unlock. If apply still reports a lease, check that it uses the same"
            " state.uri.",
        )
    try:
        info = LeaseInfo.from_json(current.data, location, plan_file)
    except LeaseCorrupt as exc:
        if lock_id.strip() != CORRUPT_LOCK_ID:
            raise StateError(
                f"Refusing to unlock plan '{plan_name}' with lock id {lock_id}: the lease at"
                f" {location} is corrupt ({exc.reason}), so it has no lock id to match.",
                None,
                "If no elax-plan run is active for this plan, remove it with `"
                + _unlock_command(plan_file, CORRUPT_LOCK_ID)
                + "`.",
            ) from None
        _delete_judged(backend, key, current.version, plan_name, location, plan_file)
        return None
    if lock_id.strip() == CORRUPT_LOCK_ID:
        raise StateError(
            f"Refusing to unlock plan '{plan_name}': its lease at {location} is readable, not"
            f" corrupt ('{CORRUPT_LOCK_ID}' only removes a lock.json that is no lease).",
            f"The lease is held: {info.describe(clock(), with_lock_id=False)}.",
            "Make sure that run is gone, then look up the lease's lock id with `"
            + _status_command(plan_file)
            + "` and pass it to `"
            + _unlock_command(plan_file, "LOCK_ID")
            + "`.",
        )
    if info.lock_id != lock_id.strip():
        # Never the right id here: a guess would be answered with the key to the lease.
        raise StateError(
            f"Refusing to unlock plan '{plan_name}': lock id {lock_id} is not its lease's.",
            f"The lease is held: {info.describe(clock(), with_lock_id=False)}.",
            "Make sure that run is gone, then look up the lease's lock id with `"
            + _status_command(plan_file)
            + "` and pass it to `"
            + _unlock_command(plan_file, "LOCK_ID")
            + "`.",
        )
    _delete_judged(backend, key, current.version, plan_name, location, plan_file)
    return info


def _delete_judged(
    backend: StateBackend,
    key: str,
    version: str,
    plan_name: str,
    location: str,
    plan_file: str | None,
) -> None:
    """Delete ``lock.json`` only as it was read and judged (``version``)."""
    try:
        backend.delete(key, expected_version=version)
    except Conflict:
        raise StateError(
            f"The lease on plan '{plan_name}' changed while it was being unlocked.",
            f"See {location}: it was renewed, released or replaced.",
            f"Check `{_status_command(plan_file)}` and run unlock again with what it shows.",
        ) from None
