"""``Heartbeat``: renews a lease in a daemon thread and reports a loss to its owner."""

from __future__ import annotations

import threading
from collections.abc import Callable

from elax_plan.errors import LeaseLost, StateError
from elax_plan.state.lease import DEFAULT_RENEW_INTERVAL, Lease


class Heartbeat:
    """Renews a lease every ``interval`` seconds in a daemon thread until stopped.

    A loss is never silent: ``lost`` is set, ``error`` holds the ``LeaseLost``,
    ``on_lost`` (if given) is called from the heartbeat thread, and ``check()``
    re-raises it in the owner's thread. A renewal that fails for another reason
    (e.g. the S3 endpoint is briefly unreachable) is retried at the next beat
    until the lease would have expired; then it counts as lost.
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
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"elax-lease-heartbeat-{lease.plan}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing and wait for the thread; the lease itself is left as it is."""
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
            if self.lease.released:
                return
            try:
                self.lease.renew()
                self.renewals += 1
            except LeaseLost as exc:
                if not self.lease.released:  # released by its owner is not a loss
                    self._report(exc)
                return
            except StateError as exc:
                if self.lease.clock() < self.lease.info.expires:
                    continue  # transient: the lease is still valid, try at the next beat
                self._report(
                    LeaseLost(
                        f"This run could not renew its lease on plan '{self.lease.plan}'"
                        f" (lock id {self.lease.lock_id}) before it expired.",
                        f"Last error: {exc.message}",
                        "Another run may take the plan over now; check the state store, then"
                        " run apply again to resume.",
                    )
                )
                return

    def _report(self, error: StateError) -> None:
        self.error = error
        self.lost.set()
        if self.on_lost is not None:
            self.on_lost(error)
