"""A separate process that competes for a plan's lease, driven line by line over stdin.

Run as ``python lease_child.py URL OPTIONS_JSON``. It prints ``ready`` once
imported and connected, then answers each command with one JSON line:

* ``go PLAN`` — try to take the lease (no waiting); if won, claim the ledger
  and write it, and keep holding the lease;
* ``release`` — release the lease it holds (if any);
* ``hold PLAN`` — take the lease and keep it until killed.

It is a test helper, not part of elax-plan.
"""

from __future__ import annotations

import sys

import orjson

from elax_plan.state import (
    Lease,
    LeaseHeld,
    Ledger,
    LedgerStore,
    TargetIdentity,
    acquire,
    open_backend,
)


def main() -> None:
    backend = open_backend(sys.argv[1], orjson.loads(sys.argv[2]))
    held: Lease | None = None

    def answer(**fields: object) -> None:
        sys.stdout.write(orjson.dumps(fields).decode() + "\n")
        sys.stdout.flush()

    answer(ready=True)
    for line in sys.stdin:
        command, _, plan = line.strip().partition(" ")
        if command == "go":
            try:
                held = acquire(backend, plan, "apply")
            except LeaseHeld as exc:
                answer(won=False, message=str(exc))
                continue
            writer = LedgerStore(backend, plan).claim(held)
            target = TargetIdentity.of("http://127.0.0.1:3000", "memory://store", "ns")
            saved = writer.save(Ledger.new(plan, target, "cosine", 4))
            answer(won=True, lock_id=held.lock_id, serial=saved.serial)
        elif command == "release":
            answer(released=held.release() if held is not None else False)
            held = None
        elif command == "hold":
            held = acquire(backend, plan, "apply")
            answer(lock_id=held.lock_id)


if __name__ == "__main__":
    main()
