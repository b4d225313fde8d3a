"""Real processes racing for one plan's lease, on a file:// store and on the moto S3 server.

These are the Must-show concurrency cases: two appliers at once — exactly one
takes the lease and writes the ledger, the other is told who holds it and the
lock id — and a ``kill -9``-ed holder on this host whose lease is taken over
at once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from elax_plan.state import LeaseHeld, acquire, open_backend, read_lease, read_ledger
from tests.conftest import S3Server, StoreLocation, make_bucket

CHILD = Path(__file__).with_name("lease_child.py")
ROUNDS = 6


@pytest.fixture(params=["file", "s3"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    """A store several processes can open: file:// and s3:// (moto server)."""
    if request.param == "file":
        return StoreLocation("file", (tmp_path / "state").as_uri())
    s3: S3Server = request.getfixturevalue("s3_server")
    return StoreLocation("s3", f"s3://{make_bucket(s3)}/state", s3.storage_options())


class Child:
    """One ``lease_child.py`` process and its line protocol."""

    def __init__(self, store: StoreLocation) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), store.url, orjson.dumps(store.storage_options).decode()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"child exited with {self.proc.wait()}"
        value = orjson.loads(line)
        assert isinstance(value, dict)
        return value

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        # Every write was flushed, so closing never has to write to a dead child.
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture
def children(shared_store: StoreLocation) -> Iterator[tuple[Child, Child]]:
    """Two ready child processes on the shared store."""
    pair = (Child(shared_store), Child(shared_store))
    try:
        for child in pair:
            assert child.answer() == {"ready": True}
        yield pair
    finally:
        for child in pair:
            child.close()


def test_two_processes_one_wins(shared_store: StoreLocation, children: tuple[Child, Child]) -> None:
    """Two processes acquire at once: one writes the ledger, the other is told the lock id."""
    backend = open_backend(shared_store.url, shared_store.storage_options)
    winners = set()
    for round_no in range(ROUNDS):
        plan = f"race-{round_no}"
        for child in children:
            child.send(f"go {plan}")
        answers = [child.answer() for child in children]
        won = [a for a in answers if a["won"]]
        lost = [a for a in answers if not a["won"]]
        assert len(won) == 1 and len(lost) == 1, answers
        winner = won[0]
        assert winner["lock_id"] in lost[0]["message"]
        assert "pid" in lost[0]["message"] and "elax-plan unlock" in lost[0]["message"]
        ledger = read_ledger(backend, plan)
        assert ledger is not None and ledger.lock_id == winner["lock_id"] and ledger.serial == 1
        winners.add(answers.index(winner))
        for child in children:
            child.send("release")
        assert sorted(child.answer()["released"] for child in children) == [False, True]
        assert read_lease(backend, plan) is None


def test_killed_holder_is_taken_over_at_once(shared_store: StoreLocation) -> None:
    """After kill -9 of the process holding the lease, the next acquire takes it at once."""
    backend = open_backend(shared_store.url, shared_store.storage_options)
    child = Child(shared_store)
    try:
        assert child.answer() == {"ready": True}
        child.send("hold killed-plan")
        lock_id = child.answer()["lock_id"]
        with pytest.raises(LeaseHeld, match=lock_id):
            acquire(backend, "killed-plan")
        child.proc.kill()  # SIGKILL: no cleanup, the lease stays in the store
        child.proc.wait(timeout=30)
        stored = read_lease(backend, "killed-plan")
        assert stored is not None and stored.lock_id == lock_id
        lease = acquire(backend, "killed-plan")  # default 60 s TTL: not expired
        assert lease.taken_over is not None and lease.taken_over.lock_id == lock_id
    finally:
        child.close()
