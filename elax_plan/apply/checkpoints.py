"""Checkpoints: the ledger in memory, saved (fenced by the lease) as acknowledged writes land.

Owns turning the pipeline's per-file progress (``FileRun``) into ledger entries
and back, and when the ledger is saved: at least every ``CHECKPOINT_INTERVAL``
seconds and at file boundaries, as often as saving stays a small share of the
time (a ledger of 10,000 files is not rewritten 10,000 times). A file whose
acknowledged writes were overwritten on the server goes back to partial and is
saved at once. Events and rejected rows buffered since the last save are
written with it. It never decides what to write; the execution plan's file
steps do.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from elax_plan.apply.pipeline import FileRun, PipelineStats
from elax_plan.apply.readers import ResumePoint
from elax_plan.apply.run_files import RunEvents
from elax_plan.execution_plan import FileStep
from elax_plan.state import (
    Ack,
    FileEntry,
    FileStatus,
    Ledger,
    LedgerWriter,
    RunFiles,
    RunState,
    Verification,
)

CHECKPOINT_INTERVAL = 5.0
# A finished file is checkpointed at once unless the last save was less than this many times
# its own duration ago: saving then takes at most ~1/11 of the run, however many files.
BOUNDARY_SAVE_SPACING = 10.0


def _position(point: Mapping[str, Any]) -> tuple[int, int, int]:
    return (int(point.get("offset", 0)), int(point.get("line", 0)), int(point.get("row", 0)))


def acks_before(acks: Sequence[Ack], point: Mapping[str, Any] | None) -> list[Ack]:
    """The acknowledged writes whose rows lie before ``point`` (the rest are written again)."""
    if not point:
        return []
    limit = _position(point)
    return [a for a in acks if _position(a.start) < limit]


def entry_for(step: FileStep, ledger: Ledger) -> FileEntry:
    old = ledger.files.get(step.url)
    if step.action == "resume" and old is not None:
        # The listed fingerprint matched the recorded one (``live.model.same_source``); the
        # listing's may be of a newer form (an older elax-plan wrote the ledger): keep it.
        return dataclasses.replace(
            old,
            status="partial",
            acks=acks_before(old.acks, step.resume_from),
            fingerprint=step.fingerprint or old.fingerprint,
        )
    return FileEntry(
        url=step.url, fingerprint=step.fingerprint or "", size=step.size, status="pending"
    )


def upgraded_fingerprints(steps: Sequence[FileStep], ledger: Ledger) -> Ledger:
    """``ledger`` with the listed fingerprint of each file the plan skips as done, where the
    recorded one differs: it matched (``live.model.same_source``), and is of an older form,
    written before a field such as ``blocks`` existed. Saved with the run's first write."""
    changed: dict[str, FileEntry] = {}
    for step in steps:
        entry = ledger.files.get(step.url)
        if (
            step.action == "skip"
            and step.fingerprint
            and entry is not None
            and entry.fingerprint != step.fingerprint
        ):
            changed[step.url] = dataclasses.replace(entry, fingerprint=step.fingerprint)
    if not changed:
        return ledger
    return dataclasses.replace(ledger, files={**ledger.files, **changed})


def file_run(step: FileStep, entry: FileEntry) -> FileRun:
    if step.action == "resume":
        start = ResumePoint.from_dict(dict(step.resume_from or {}))
        return _run_from(entry, start)
    return FileRun(
        url=step.url,
        fingerprint=entry.fingerprint,
        size=entry.size,
        start=ResumePoint(),
        committed=ResumePoint(),
    )


def _run_from(entry: FileEntry, start: ResumePoint) -> FileRun:
    """A file that goes on from ``start`` with what its ledger entry acknowledged so far."""
    return FileRun(
        url=entry.url,
        fingerprint=entry.fingerprint,
        size=entry.size,
        start=start,
        committed=start,
        rows=entry.rows,
        bytes=entry.bytes,
        wal_first=entry.wal_first,
        wal_last=entry.wal_last,
        acks=list(entry.acks),
    )


def run_state(
    previous: RunState,
    run_id: str,
    started: float,
    writes: bool,
    lost_upserts: int,
    wal_highwater: int,
) -> RunState:
    """The ledger's run entry for a run that starts now, after ``previous``, on a namespace
    at ``wal_highwater``.

    A run that resumes, or writes nothing, verifies (again) what the last run acknowledged;
    rows the start proof found lost (``lost_upserts``) are written again, not counted twice.
    It keeps the highwater the resumed run started at: a kill loses the acknowledgements
    since the last checkpoint, but not where that run's writes began."""
    carried = bool(previous.current_run_id) or not writes
    return RunState(
        current_run_id=run_id,
        last_run_id=previous.last_run_id,
        started=started,
        first_acked_wal_sequence=previous.first_acked_wal_sequence if carried else None,
        last_acked_wal_sequence=previous.last_acked_wal_sequence,
        upserts_acked=max(0, previous.upserts_acked - lost_upserts) if carried else 0,
        resends=previous.resends if carried else 0,
        verification=Verification("pending"),
        wal_highwater_at_start=previous.wal_highwater_at_start if carried else wal_highwater,
    )


def resend_run(entry: FileEntry) -> FileRun:
    """A file to write again in this run from its ledger entry's resume point (its rows were
    overwritten on the server after they were acknowledged)."""
    return _run_from(entry, ResumePoint.from_dict(dict(entry.resume or {})))


def entry_of(fr: FileRun) -> FileEntry:
    status: FileStatus
    if fr.redo_from is not None:  # overwritten on the server after its checkpoint: redo
        status, resume = "partial", fr.redo_from
    elif fr.done:
        status, resume = "done", fr.committed
    else:
        status = "partial" if fr.rows or fr.committed != fr.start else "pending"
        resume = fr.committed
    return FileEntry(
        url=fr.url,
        fingerprint=fr.fingerprint,
        size=fr.size,
        status=status,
        resume=resume.to_dict(),
        rows=fr.rows,
        bytes=fr.bytes,
        wal_first=fr.wal_first,
        wal_last=fr.wal_last,
        acks=fr.acks if fr.redo_from is None else acks_before(fr.acks, resume.to_dict()),
    )


class Checkpointer:
    """Keeps the ledger in memory and saves it (fenced) at file boundaries and every few seconds.

    A save rewrites the whole ledger, so its cost grows with the number of files: boundary
    saves are spaced by ``BOUNDARY_SAVE_SPACING`` times the last save's duration. Progress not
    saved yet is only re-sent after a crash (upserts are idempotent), never lost.
    """

    def __init__(
        self,
        writer: LedgerWriter,
        ledger: Ledger,
        events: RunEvents,
        run_files: RunFiles,
        rejects: list[bytes],
        interval: float = CHECKPOINT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.writer = writer
        self.clock = clock
        self.ledger = ledger
        self.events = events
        self.run_files = run_files
        self.rejects = rejects
        self.interval = interval
        self.last_save = clock()
        self.last_save_cost = 0.0
        self.lock = threading.Lock()
        # File progress since the last save; merged into the ledger when it is saved, so a
        # checkpoint costs O(1) instead of copying every file entry of a large ledger.
        self._entries: dict[str, FileEntry] = {}

    def update(self, fr: FileRun) -> None:
        entry = entry_of(fr)
        previous = self._entries.get(fr.url) or self.ledger.files.get(fr.url)
        self._entries[fr.url] = entry
        since = self.clock() - self.last_save
        # A file marked for redoing is saved at once: its checkpoint moved back.
        moved_back = fr.redo_from is not None and (
            previous is None or previous.resume != entry.resume
        )
        if (
            moved_back
            or since >= self.interval
            or (fr.done and since >= self.last_save_cost * BOUNDARY_SAVE_SPACING)
        ):
            self.save()

    def replace_entries(self, entries: Mapping[str, FileEntry]) -> None:
        """Put these entries in the ledger as they are (e.g. after a delivery proof), saved
        with the next save."""
        self._entries.update(entries)

    def update_run(self, **changes: Any) -> None:
        self.ledger = self.ledger.with_run(dataclasses.replace(self.ledger.run, **changes))

    def record_writes(self, stats: PipelineStats) -> None:
        """Add a pass of writes to the ledger's run entry: its acknowledged WAL range, upserts
        and re-sent requests (saved with the next save)."""
        run = self.ledger.run
        first = run.first_acked_wal_sequence
        if stats.min_acked_seq is not None:
            first = min(first or stats.min_acked_seq, stats.min_acked_seq)
        self.update_run(
            first_acked_wal_sequence=first,
            last_acked_wal_sequence=max(run.last_acked_wal_sequence or 0, stats.max_acked_seq)
            or None,
            upserts_acked=run.upserts_acked + stats.rows_acked,
            resends=run.resends + stats.resends,
        )

    def unread(self, file_runs: Sequence[FileRun]) -> None:
        """Put the files this run read but acknowledged nothing of back where it started
        them, and save: the next apply reads them again instead of taking them for done."""
        for fr in file_runs:
            if fr.read and not fr.acked:
                fr.committed, fr.tail, fr.done = fr.start, None, False
                self.update(fr)
        self.save()

    def save(self) -> Ledger:
        with self.lock:
            started = self.clock()
            self.events.flush(self.run_files)
            if self.rejects:
                batch = list(self.rejects)
                self.rejects.clear()
                self.run_files.append_rejects([orjson.loads(line) for line in batch])
            if self._entries:
                files = {**self.ledger.files, **self._entries}
                self.ledger = dataclasses.replace(self.ledger, files=files)
                self._entries = {}
            self.ledger = self.writer.save(self.ledger)
            self.last_save = self.clock()
            self.last_save_cost = self.last_save - started
            return self.ledger
