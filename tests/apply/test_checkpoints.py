"""When apply saves its ledger (``Checkpointer`` in elax_plan/apply/run.py).

A save rewrites the whole ledger, so with many files it must not happen at every file
boundary; with a small ledger it still does. Time is a fake clock that each save advances by
its cost, so the spacing is exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from elax_plan.apply.checkpoints import BOUNDARY_SAVE_SPACING, CHECKPOINT_INTERVAL, Checkpointer
from elax_plan.apply.pipeline import FileRun
from elax_plan.apply.readers import ResumePoint
from elax_plan.apply.run_files import RunEvents
from elax_plan.state import (
    Ledger,
    LedgerStore,
    LedgerWriter,
    RunFiles,
    TargetIdentity,
    acquire,
    new_run_id,
    open_backend,
    read_ledger,
)
from tests.state.conftest import FakeClock

PLAN = "checkpoints"


class TimedWriter:
    """The real ledger writer, each save taking ``cost`` seconds of the fake clock."""

    def __init__(self, writer: LedgerWriter, clock: FakeClock, cost: float) -> None:
        self.writer, self.clock, self.cost = writer, clock, cost
        self.saves = 0

    def save(self, ledger: Ledger) -> Ledger:
        self.clock.now += self.cost
        self.saves += 1
        return self.writer.save(ledger)


def setup(tmp_path: Path, cost: float) -> tuple[Checkpointer, TimedWriter, FakeClock, Any]:
    backend = open_backend(tmp_path.as_uri())
    lease = acquire(backend, PLAN, "apply")
    clock = FakeClock()
    writer = TimedWriter(LedgerStore(backend, PLAN).claim(lease), clock, cost)
    ledger = Ledger.new(PLAN, TargetIdentity.of("http://x", "file:///s", "ns"), "cosine", 8)
    run_files = RunFiles(backend, PLAN, new_run_id())
    checkpoints = Checkpointer(
        writer,  # type: ignore[arg-type]
        ledger,
        RunEvents(lambda kind, data: None),
        run_files,
        [],
        clock=clock,
    )
    checkpoints.save()
    return checkpoints, writer, clock, backend


def finished(i: int) -> FileRun:
    fr = FileRun(f"file:///data/f{i:04d}.ndjson", "fp", 10, ResumePoint(), ResumePoint())
    fr.rows, fr.bytes, fr.done = 1, 10, True
    return fr


def test_finished_files_of_a_large_ledger_are_saved_in_batches(tmp_path: Path) -> None:
    """Saves of 0.1 s, a file finishing every 10 ms: one save per ~1 s of files, not 500."""
    checkpoints, writer, clock, backend = setup(tmp_path, cost=0.1)
    start = clock.now
    for i in range(500):
        clock.now += 0.01
        checkpoints.update(finished(i))
    saves = writer.saves - 1
    # 5 s of files; each save costs 0.1 s and waits BOUNDARY_SAVE_SPACING times that.
    assert 3 <= saves <= 5
    assert saves * 0.1 <= (clock.now - start) / (1 + BOUNDARY_SAVE_SPACING) + 0.1
    stored = read_ledger(backend, PLAN)
    assert stored is not None and len(stored.files) > 0  # saved along the way
    # Nothing is lost: the next save (interval, end of run) holds every file.
    checkpoints.save()
    stored = read_ledger(backend, PLAN)
    assert stored is not None and len(stored.files) == 500
    assert all(entry.status == "done" for entry in stored.files.values())


def test_a_small_ledger_is_saved_at_every_file_boundary(tmp_path: Path) -> None:
    checkpoints, writer, clock, _ = setup(tmp_path, cost=0.0)
    for i in range(20):
        clock.now += 0.01
        checkpoints.update(finished(i))
    assert writer.saves - 1 == 20


@pytest.mark.parametrize("cost", [0.0, 0.1])
def test_progress_within_a_file_is_saved_every_interval(tmp_path: Path, cost: float) -> None:
    checkpoints, writer, clock, _ = setup(tmp_path, cost=cost)
    fr = FileRun("file:///data/big.ndjson", "fp", 10**9, ResumePoint(), ResumePoint())
    for _ in range(99):
        clock.now += CHECKPOINT_INTERVAL / 10
        fr.rows += 100
        checkpoints.update(fr)
    assert 9 <= writer.saves - 1 <= 10
