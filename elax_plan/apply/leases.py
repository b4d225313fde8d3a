"""The two leases of one apply (or ``wal restore``): the plan's (its ledger) and its
namespace's (the writes).

Owns taking them in a fixed order — the plan lease, then the namespace lease
``namespaces/<ns>.lock`` — under one ``--lock-timeout`` for both, renewing both with one
heartbeat, and releasing both (the namespace first) on every exit path.

Why a namespace lease: two plans writing one namespace at once lose writes on a real
node (CONTRACT hazard H1), and the plan lease only keeps one plan from running twice.

Why it is held for the whole run, from before the plan is computed to after the summary,
and not only around the writes:

* the indexer command that apply runs after its last write must not overlap another
  plan's writes (hazard H2), nor may another plan's compaction overlap ours;
* the plan is computed under it, so its preconditions (indexer caught up) judge a
  namespace no other plan is writing into, and a plan that waited starts after the other
  run's index wait instead of failing on the lag that run left;
* verification is about this run's writes: another plan's writes move the epoch and the
  parts under the parts check, and make the node retrain its IVF on the next query
  (hazard H5), slowing or failing recall and smoke queries; WAL trim moves the
  namespace's WAL objects.

The order (plan, then namespace; released in reverse) cannot deadlock: a run needs one
namespace lease, and never waits for a plan lease while holding one.
"""

from __future__ import annotations

import functools
import threading
import time

import structlog

from elax_plan.apply.context import ApplyHooks, ApplyOptions
from elax_plan.errors import StateError
from elax_plan.spec import PlanSpec
from elax_plan.state import Heartbeat, Lease, LeaseKey, StateBackend, acquire

log = structlog.get_logger("elax_plan.apply")


class RunLeases:
    """Take, renew and release one run's plan lease and namespace lease.

    ``take`` raises ``LeaseHeld`` (after the wait), ``LeaseCorrupt``, or ``Interrupted``
    when ``stop`` is set while waiting; whatever it took is released again first.
    """

    def __init__(
        self,
        backend: StateBackend,
        spec: PlanSpec,
        options: ApplyOptions,
        hooks: ApplyHooks,
        stop: threading.Event,
        plan_file: str | None,
        action: str = "apply",
    ) -> None:
        self.namespace_key = LeaseKey.namespace(spec.target.namespace)
        self._options = options
        self._stop = stop
        self._acquire = functools.partial(
            acquire,
            backend,
            spec.name,
            action,
            ttl=options.lease_ttl,
            plan_file=plan_file,
            on_wait=hooks.on_lock_wait,
            stop=stop,
        )
        self.plan: Lease | None = None
        self.namespace: Lease | None = None
        self.heartbeat: Heartbeat | None = None

    def take(self) -> tuple[Lease, Heartbeat]:
        """The plan lease and the heartbeat renewing it (and the namespace lease)."""
        deadline = time.monotonic() + self._options.lock_timeout
        plan = self.plan = self._acquire(wait=self._options.lock_timeout)
        log.info("lease taken", lock_id=plan.lock_id, plan=plan.plan)
        # Started before the namespace lease is waited for, which may take all of
        # --lock-timeout: the plan lease must not expire meanwhile.
        stop = self._stop
        heartbeat = Heartbeat(plan, self._options.lease_renew, on_lost=lambda _: stop.set())
        self.heartbeat = heartbeat.start()
        try:
            wait = max(0.0, deadline - time.monotonic())
            self.namespace = self._acquire(key=self.namespace_key, wait=wait)
        except BaseException:
            self.release()
            raise
        heartbeat.add(self.namespace)
        _log_taken(self.namespace)
        return plan, heartbeat

    def release(self) -> None:
        """Stop renewing and release both leases, the namespace first (a plan waiting for it
        starts as early as possible). A release that fails is logged: the lease then expires."""
        if self.heartbeat is not None:
            self.heartbeat.stop()
        for held in (self.namespace, self.plan):
            if held is None:
                continue
            try:
                held.release()
            except StateError as exc:
                log.warning("lease not released", lease=str(held.lease_key), error=exc.message)


def _log_taken(namespace: Lease) -> None:
    gone = namespace.taken_over
    if gone is not None:
        # Expired, or its holder died on this host: worth a line, as another plan's run ended
        # without releasing it.
        log.warning(
            "namespace lease taken over",
            namespace=namespace.lease_key.name,
            from_plan=gone.plan,
            from_lock_id=gone.lock_id,
            holder=gone.holder.describe(),
        )
    log.info("namespace lease taken", lock_id=namespace.lock_id, namespace=namespace.lease_key.name)
