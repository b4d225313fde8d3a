"""``Heartbeat``: renews a run's leases in a daemon thread and reports a loss to its owner."""

from __future__ import annotations

import threading
from collections.abc import Callable

from elax_plan.errors import LeaseLost, StateError
from elax_plan.state.lease import DEFAULT_RENEW_INTERVAL, Lease


class Heartbeat:
    """Renews ``lease`` — and every lease ``add``-ed later (apply's namespace lease) — every
    ``interval`` seconds in a daemon thread until stopped.

    A loss is never silent: ``lost`` is set, ``error`` holds the first ``LeaseLost``,
    ``on_lost`` (if given) is called from the heartbeat thread, and ``check()``
    re-raises it in the owner's thread. The other leases are still renewed after a loss:
    the owner needs them while it stops cleanly. A renewal that fails for another reason
    (e.g. the S3 endpoint is briefly unreachable) is retried at the next beat until the
    lease would have expired; then it counts as lost. A lease its owner released is no
    longer renewed, and that is no loss.
    """

    def __init__(
        self,
        lease: Lease,
        interval: float = DEFAULT_RENEW_INTERVAL,
        *,
        on_lost: Callable[[StateError], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.lease = lease
        self.interval = interval
        self.on_lost = on_lost
        self.lost = threading.Event()
        self.renewals = 0
        self.error: StateError | None = None
        self._leases = [lease]
        self._leases_mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"elax-lease-heartbeat-{lease.plan}", daemon=True
        )

    def add(self, lease: Lease) -> None:
        """Renew ``lease`` too, from the next beat on."""
        with self._leases_mutex:
            self._leases.append(lease)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing and wait for the thread; the leases themselves are left as they are."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check(self) -> None:
        """Raise the loss in the caller's thread, if there was one."""
        if self.error is not None:
            raise self.error

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._leases_mutex:
                # Released or lost leases are renewed no more.
                self._leases = [lease for lease in self._leases if not lease.released]
                leases = list(self._leases)
            if not leases:
                return
            for lease in leases:
                if not self._beat(lease):
                    with self._leases_mutex:
                        self._leases.remove(lease)

    def _beat(self, lease: Lease) -> bool:
        """Renew ``lease`` once; False when it is lost (reported) and must not be renewed."""
        try:
            lease.renew()
            self.renewals += 1
        except LeaseLost as exc:
            if not lease.released:  # released by its owner is not a loss
                self._report(exc)
            return False
        except StateError as exc:
            if lease.clock() < lease.info.expires:
                return True  # transient: the lease is still valid, try at the next beat
            self._report(
                LeaseLost(
                    f"This run could not renew its lease on {lease.lease_key}"
                    f" (lock id {lease.lock_id}) before it expired.",
                    f"Last error: {exc.message}",
                    "Another run may take it over now; check the state store, then"
                    " run apply again to resume.",
                )
            )
            return False
        return True

    def _report(self, error: StateError) -> None:
        if self.error is None:  # the first loss is the one the owner acts on
            self.error = error
        self.lost.set()
        if self.on_lost is not None:
            self.on_lost(error)
