"""What a lease says: what it locks (``LeaseKey``), its record (``LeaseInfo``) and its words.

Two kinds of lease share one record and one set of mechanics (``lease``):

* the **plan lease** (``<plan>/lock.json``): who may write the plan's ledger;
* the **namespace lease** (``namespaces/<ns>.lock``): which plan may write into the
  target namespace now. Two writers on one namespace lose writes on a real node
  (CONTRACT hazard H1), so ``apply`` holds it for its writes. It coordinates only
  plans that share ``state.uri``: a plan with another state store never sees it.

This module owns the key of each kind, the JSON of a lease, and how messages name a
lease and the commands that release it (``elax-plan unlock PLAN [--namespace] LOCK_ID``).
It does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from elax_plan.errors import LeaseCorrupt, StateError
from elax_plan.state.holder import Holder
from elax_plan.state.layout import dumps, iso, loads_object, lock_key, namespace_lock_key, parse_iso

LOCK_VERSION = 1
CORRUPT_LOCK_ID = "corrupt"
"""What ``unlock`` takes instead of a lock id to remove a lock file that is no lease."""

LeaseKind = Literal["plan", "namespace"]


@dataclass(frozen=True, slots=True)
class LeaseKey:
    """What a lease locks: a plan (its ledger) or a target namespace (the writes into it)."""

    kind: LeaseKind
    name: str

    def __post_init__(self) -> None:
        self.path  # noqa: B018 — a name that cannot be a key fails here, not at first use

    @classmethod
    def plan(cls, plan_name: str) -> LeaseKey:
        return cls("plan", plan_name)

    @classmethod
    def namespace(cls, namespace: str) -> LeaseKey:
        return cls("namespace", namespace)

    @property
    def path(self) -> str:
        """The lease's key under ``state.uri``."""
        return lock_key(self.name) if self.kind == "plan" else namespace_lock_key(self.name)

    @property
    def file_name(self) -> str:
        """``lock.json`` or ``<ns>.lock``, for messages."""
        return self.path.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"{self.kind} '{self.name}'"

    def unlock_command(self, plan_file: str | None, lock_id: str) -> str:
        return unlock_command(plan_file, lock_id, self.kind)


def as_key(what: str | LeaseKey) -> LeaseKey:
    """A plan name means that plan's lease (every caller before namespace leases)."""
    return what if isinstance(what, LeaseKey) else LeaseKey.plan(what)


def unlock_command(plan_file: str | None, lock_id: str, kind: LeaseKind = "plan") -> str:
    """The ``unlock`` that releases a lease of ``kind`` through ``plan_file``."""
    # A namespace lease is released through a plan that writes into it: the plan file gives
    # state.uri and target.namespace; --namespace says which of the plan's two leases.
    flag = " --namespace" if kind == "namespace" else ""
    return f"elax-plan unlock {plan_file or 'PLAN.yaml'}{flag} {lock_id}"


def status_command(plan_file: str | None) -> str:
    return f"elax-plan status {plan_file or 'PLAN.yaml'}"


def ago(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """The content of a lock file; times are epoch seconds.

    ``plan`` is the plan whose run holds the lease; ``namespace`` is set for a namespace
    lease only (plan leases keep the exact JSON they always had)."""

    lock_id: str
    plan: str
    operation: str
    holder: Holder
    created: float
    renewed: float
    expires: float
    namespace: str | None = None

    @property
    def key(self) -> LeaseKey:
        """What this lease locks."""
        if self.namespace is not None:
            return LeaseKey.namespace(self.namespace)
        return LeaseKey.plan(self.plan)

    def expired(self, now: float) -> bool:
        return now >= self.expires

    @property
    def since(self) -> str:
        """When the lease was taken, ISO 8601 UTC."""
        return iso(self.created)

    def describe(self, now: float, *, with_lock_id: bool = True) -> str:
        """Operation, (plan,) holder, since when, (lock id,) and when the lease expires."""
        left = self.expires - now
        expiry = (
            f"expired {ago(-left)} ago" if left <= 0 else f"expires in {ago(left)} unless renewed"
        )
        lock_id = f", lock id {self.lock_id}" if with_lock_id else ""
        # A namespace lease is held for some plan: which one is the first thing to know.
        of_plan = f" of plan '{self.plan}'" if self.namespace is not None else ""
        return (
            f"{self.operation}{of_plan} by {self.holder.describe()} since {self.since}{lock_id};"
            f" the lease {expiry}"
        )

    def stored(self) -> LeaseInfo:
        """This lease as it reads back from its lock file (times to the millisecond)."""
        return LeaseInfo.from_json(self.to_json(), self.key.file_name)

    def to_json(self) -> bytes:
        doc = {
            "lock_version": LOCK_VERSION,
            "lock_id": self.lock_id,
            "plan": self.plan,
            "operation": self.operation,
            "holder": self.holder.to_dict(),
            "created": iso(self.created),
            "renewed": iso(self.renewed),
            "expires": iso(self.expires),
        }
        if self.namespace is not None:
            doc["namespace"] = self.namespace
        return dumps(doc)

    @classmethod
    def from_json(
        cls,
        data: bytes,
        location: str,
        plan_file: str | None = None,
        key: LeaseKey | None = None,
    ) -> LeaseInfo:
        """The lease in ``data``; ``LeaseCorrupt`` (naming ``plan_file``'s unlock of ``key``)
        if it is none."""
        try:
            raw = loads_object(data, location, "lease")
        except StateError as exc:
            reason = exc.summary.removeprefix(f"The lease at {location} is ").rstrip(".")
            raise corrupt_lease(location, reason, plan_file, key) from None
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
            namespace = raw.get("namespace")
            if namespace is not None and not isinstance(namespace, str):
                raise ValueError("namespace must be a string")
            return cls(
                lock_id=lock_id,
                plan=plan,
                operation=operation,
                holder=Holder.from_dict(raw["holder"]),
                created=parse_iso(raw["created"]),
                renewed=parse_iso(raw["renewed"]),
                expires=parse_iso(raw["expires"]),
                namespace=namespace,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise corrupt_lease(
                location, f"not a valid elax-plan lease ({exc})", plan_file, key
            ) from None


def corrupt_lease(
    location: str, reason: str, plan_file: str | None, key: LeaseKey | None = None
) -> LeaseCorrupt:
    """The error for a lock file that is no lease: what is wrong and the command to clear it."""
    kind: LeaseKind = key.kind if key is not None else "plan"
    unlock = unlock_command(plan_file, CORRUPT_LOCK_ID, kind)
    return LeaseCorrupt(
        f"The lease at {location} is corrupt: {reason}.",
        "It was edited by hand, cut short, or written by another tool, so it has no lock id.",
        f"If no elax-plan run is active for this {kind}, remove it with `{unlock}`.",
        reason,
    )
