"""The ingest pipeline: source rows → chunks → acknowledged writes → checkpoints.

Owns the replay-and-throttle loop of the runbook. The main thread reads and
maps rows, packs chunks and submits them to at most ``concurrency`` writer
threads; it alone processes acknowledgements, so no state here needs a lock.

Checkpoints (``FileRun.committed``) only ever move past acknowledged rows, and
only once an acknowledgement is *settled*: every request that overlapped it
has been answered too. That matters because of hazard H1 — two overlapping
writes that come back with the same ``wal_sequence`` mean the server lost one,
and both chunks are re-sent; a chunk is never checkpointed while a request it
could have collided with is still out. A later request can still reuse a
settled chunk's sequence when a racing append set ``wal_highwater`` back (the
server sets it, it does not raise it): that chunk's bytes are gone by then, so
its file is marked to be written again from the chunk's start
(``FileRun.redo_from``, saved at once, the file left partial), and apply re-sends
it from there after this pipeline ends (``ApplyRun.deliver``).

The last chunk of a file does not go out alone: it waits for the last chunks of
the files after it, and they share one request while the body stays within the
chunk target (a file that fills a chunk sends the waiting ones first). So a
source of many small files makes a few WAL entries instead of one per file, and
the throttle, which counts WAL entries, does not hold every file. Each file
still checkpoints its own part once the shared request is settled.

A 413 splits the chunk in two (a shared request: into its files' chunks) and
lowers the chunk target for the rest of the run; a row that alone gets a 413 is
an invalid row. It must not touch the ledger or the lease itself: it reports
progress through ``on_checkpoint``.

Accounting: every row read is either acknowledged or rejected, per file
(``FileRun.read`` = rows acknowledged in this run + ``FileRun.rejected``); a run
that wrote everything checks it before it returns and raises ``RowsUnaccounted``
if a file's numbers do not add up (a bug detector: it should never happen). Ids
are counted as chunks close (``duplicates.IdTracker``): rows whose id an earlier
row of the run had are written too (elacsym keeps the last), and counted.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from elax_plan.apply.chunker import FRAME_BYTES, Chunk, Chunker
from elax_plan.apply.duplicates import IdTracker
from elax_plan.apply.flights import FileRun, Flight, PipelineStats, check_accounts
from elax_plan.apply.readers import ResumePoint, open_source
from elax_plan.apply.rejects import RejectPolicy
from elax_plan.apply.rows import InvalidRow, MappedRow, RowMapper
from elax_plan.apply.throttle import Throttle
from elax_plan.apply.writer import PayloadTooLarge, Writer
from elax_plan.errors import ElaxError
from elax_plan.retry import Interrupted
from elax_plan.state import Ack

EventSink = Callable[[str, dict[str, Any]], None]

SETTLED_WINDOW = 10_000
"""How many settled sequences are remembered to notice (and redo) a reuse."""

STOP_POLL_S = 0.1
"""How often the main thread, waiting for an answer, looks at the stop event: a request that
hangs (a frozen target answers after ``target.timeout``) blocks only its writer thread."""

STOP_DRAIN_S = 1.0
"""After a stop, requests in flight get this long (at most ``drain_timeout``) to be answered
and checkpointed; the rest are abandoned and sent again on resume."""

Landed = list[tuple["FileRun", ResumePoint]]


class Pipeline:
    """Runs the writes of an execution plan; see the module docstring."""

    def __init__(
        self,
        files: Iterable[FileRun],
        *,
        open_rows: Callable[[FileRun], Iterable[Any]],
        mapper: RowMapper,
        writer: Writer,
        throttle: Throttle,
        rejects: RejectPolicy,
        chunk_bytes: int,
        max_request_bytes: int,
        concurrency: int,
        stop: threading.Event,
        on_event: EventSink,
        on_checkpoint: Callable[[FileRun], None],
        on_progress: Callable[[PipelineStats], None] = lambda _: None,
        on_first_ack: Callable[[int], None] = lambda _: None,
        drain_timeout: float = 10.0,
    ) -> None:
        self.files = list(files)
        self.open_rows = open_rows
        self.mapper = mapper
        self.writer = writer
        self.throttle = throttle
        self.rejects = rejects
        self.target_bytes = chunk_bytes
        self.max_request_bytes = max_request_bytes
        self.concurrency = max(1, concurrency)
        self.stop = stop
        self.on_event = on_event
        self.on_checkpoint = on_checkpoint
        self.on_progress = on_progress
        self.on_first_ack = on_first_ack
        self.drain_timeout = drain_timeout
        self.stats = PipelineStats()
        self.ids = IdTracker()
        self._next_index = 0
        self._pending: dict[Future[int], Flight] = {}
        self._in_flight: set[int] = set()
        self._outbox: deque[Flight] = deque()
        # Every acknowledged sequence: its request while unsettled; once settled, where each
        # file's chunk in it started (what to write again if a later write reuses it).
        self._seen: dict[int, Flight | Landed] = {}
        self._failure: BaseException | None = None
        self._chunker: Chunker | None = None
        self._waiting: Flight | None = None  # last chunks of files, to be sent together

    # --- the loop -----------------------------------------------------------------------------

    def run(self) -> PipelineStats:
        """Write every file; raise the first terminal error after checkpointing what landed."""
        executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="elax-writer")
        self._executor = executor
        try:
            for fr in self.files:
                if self._halted():
                    break
                self._write_file(fr)
            if not self._halted():
                self._send_waiting()
            while not self._halted() and (self._pending or self._outbox):
                if self._outbox:
                    self._pump()
                else:
                    self._collect(block=True)
        except Interrupted:
            pass
        except BaseException as exc:
            self._failure = exc
        finally:
            self._drain()
            executor.shutdown(wait=False, cancel_futures=True)
            self._count_ids()
        if self._failure is not None:
            raise self._failure
        if not self.stop.is_set():
            check_accounts(self.files)
        return self.stats

    def _count_ids(self) -> None:
        ids = self.ids
        self.stats.unique_ids = ids.unique_ids
        self.stats.duplicate_rows = ids.duplicate_rows
        self.stats.duplicate_ids = len(ids.duplicates())

    def _halted(self) -> bool:
        return self.stop.is_set() or self._failure is not None

    def _write_file(self, fr: FileRun) -> None:
        chunker = Chunker(self.target_bytes, self.max_request_bytes)
        self._chunker = chunker
        read = 0  # counted here, not on fr, to keep the per-row loop lean
        try:
            for raw in self.open_rows(fr):
                if self._halted():
                    return
                read += 1
                mapped = self.mapper.map(raw)
                if isinstance(mapped, InvalidRow):
                    chunker.skip(mapped)
                    self._reject(fr, mapped)
                    continue
                closed = chunker.add(mapped)
                if isinstance(closed, InvalidRow):
                    self._reject(fr, closed)
                elif closed is not None:
                    self.ids.add(closed.items)
                    self._send_waiting()  # a file's chunks go out in order, its last one last
                    self._submit(Flight.of(fr, closed))
                self._collect(block=False)
        finally:
            fr.read += read
            self.stats.rows_read += read
        last = chunker.flush()
        if last is not None:
            self.ids.add(last.items)
            self._wait_with_others(fr, last)
        fr.reader_done = True
        fr.tail = chunker.consumed
        self._advance(fr)

    def _reject(self, fr: FileRun, row: InvalidRow) -> None:
        """Hand ``row`` to the reject policy (which raises with ``fail``), counted for ``fr``."""
        fr.rejected += 1
        self.stats.rows_rejected += 1
        self.rejects.reject(row)

    # --- sending ------------------------------------------------------------------------------
    # Only ``_pump`` sends, and answers are only processed by ``_collect``: a 413 split or an H1
    # resend queues its chunks at the front of the outbox instead of sending from inside an
    # answer, so the number of requests in flight can never pass ``concurrency``.

    def _submit(self, flight: Flight) -> None:
        for fr in flight.chunks:
            fr.flights.append(flight)
        self._outbox.append(flight)
        self._pump()

    def _wait_with_others(self, fr: FileRun, chunk: Chunk) -> None:
        """Hold a file's last chunk for a shared request (sending what waits if it is full)."""
        waiting = self._waiting
        if waiting is not None and waiting.size_with(chunk) > self.target_bytes:
            self._send_waiting()
            waiting = None
        if waiting is None:
            waiting = self._waiting = Flight.of(fr, chunk)
        else:
            waiting.add(fr, chunk)
        # In the file's queue at once, so the file is not taken for done before it is sent.
        fr.flights.append(waiting)

    def _send_waiting(self) -> None:
        flight, self._waiting = self._waiting, None
        if flight is not None:
            self._outbox.append(flight)
            self._pump()

    def _pump(self) -> None:
        """Send everything queued, waiting for capacity and for the throttle."""
        while self._outbox and not self._halted():
            if len(self._pending) >= self.concurrency or self.throttle.wants_quiet(
                len(self._pending)
            ):
                self._collect(block=True)
                continue
            self.throttle.before_submit(in_flight=len(self._pending))
            flight = self._outbox.popleft()
            flight.index = self._next_index
            self._next_index += 1
            flight.done, flight.seq = False, None
            self._in_flight.add(flight.index)
            future = self._executor.submit(self.writer.send, flight.body)
            self._pending[future] = flight
            self.stats.requests += 1

    # --- answers ------------------------------------------------------------------------------

    def _collect(self, block: bool) -> None:
        if not self._pending:
            return
        if block:
            # Never without a timeout: the loops around this look at the stop event.
            done, _ = wait(self._pending, timeout=STOP_POLL_S, return_when=FIRST_COMPLETED)
        else:
            done = {f for f in self._pending if f.done()}
        for future in done:
            flight = self._pending.pop(future)
            self._in_flight.discard(flight.index)
            self._answer(flight, future)

    def _answer(self, flight: Flight, future: Future[int]) -> None:
        try:
            seq = future.result()
        except PayloadTooLarge:
            self._too_large(flight)
            return
        except Interrupted:
            return  # not acknowledged: re-sent on resume
        except ElaxError as exc:
            if self._failure is None:
                self._failure = exc
            return
        flight.seq, flight.done, flight.barrier = seq, True, self._next_index
        self.throttle.on_ack()
        if seq in self._seen:
            self._duplicate(seq, flight, self._seen[seq])
            return
        self._seen[seq] = flight
        self.stats.rows_acked += flight.rows
        self.stats.bytes_acked += flight.size
        self.stats.last_acked_seq = seq
        self.stats.max_acked_seq = max(self.stats.max_acked_seq, seq)
        lowest = self.stats.min_acked_seq
        if lowest is None or seq < lowest:
            self.stats.min_acked_seq = seq
        self.on_progress(self.stats)
        self._advance_all()
        if lowest is None:  # the first acknowledgement of this pipeline
            try:
                self.on_first_ack(seq)
            except ElaxError as exc:
                self._failure = self._failure or exc

    def _too_large(self, flight: Flight) -> None:
        if len(flight.chunks) > 1:
            # A shared request: its files' chunks go again one by one (and split if need be).
            self._lower_target(flight.size)
            self.stats.splits += 1
            self.on_event(
                "split_413",
                {
                    "files": [fr.url for fr in flight.chunks],
                    "rows": flight.rows,
                    "bytes": flight.size,
                    "new_chunk_target": self.target_bytes,
                },
            )
            singles = []
            for fr, chunk in flight.chunks.items():
                single = Flight.of(fr, chunk)
                fr.flights[fr.flights.index(flight)] = single
                singles.append(single)
            self._outbox.extendleft(reversed(singles))
            return
        ((fr, chunk),) = flight.chunks.items()
        if chunk.rows < 2:
            item = chunk.items[0]
            row = InvalidRow(
                item.location,
                item.resume,
                f"row refused by the server with 413 even alone (its write body is "
                f"{chunk.size:,} bytes); the server's body cap is lower than "
                "target.max_request_bytes",
                item.document[:200].decode("utf-8", "replace"),
            )
            flight.done, flight.dropped, flight.barrier = True, True, 0
            self._reject(fr, row)  # raises with on_invalid_row: fail
            self._advance_all()
            return
        chunker = self._chunker or Chunker(self.target_bytes, self.max_request_bytes)
        first, second = chunker.split(chunk)
        self._lower_target(chunk.size)
        self.stats.splits += 1
        self.on_event(
            "split_413",
            {
                "file": fr.url,
                "rows": chunk.rows,
                "bytes": chunk.size,
                "new_chunk_target": self.target_bytes,
            },
        )
        queue = fr.flights
        position = queue.index(flight)
        a, b = Flight.of(fr, first), Flight.of(fr, second)
        queue.remove(flight)
        queue.insert(position, b)
        queue.insert(position, a)
        self._outbox.appendleft(b)
        self._outbox.appendleft(a)

    def _lower_target(self, refused_size: int) -> None:
        """The server refused a body this large: aim at half of it for the rest of the run."""
        self.target_bytes = min(self.target_bytes, max(FRAME_BYTES + 1, refused_size // 2))
        if self._chunker is not None:
            self._chunker.lower_target(self.target_bytes)

    def _duplicate(self, seq: int, flight: Flight, earlier: Flight | Landed) -> None:
        """Hazard H1: two answers with one sequence; the server kept one write. Re-send both,
        or, when the earlier one is settled (its bytes dropped), mark its files for redoing."""
        self._seen[seq] = []  # handled: a third answer with it has nothing left to redo
        if isinstance(earlier, list):
            self._overwritten(seq, earlier)
            again = [flight]
        else:
            # The earlier one was counted when it came back; it is unsettled (it overlapped
            # this request), so it is still in its files' queues.
            self.stats.rows_acked -= earlier.rows
            self.stats.bytes_acked -= earlier.size
            again = [flight, earlier]
        self.stats.duplicate_sequences += 1
        self.stats.resends += len(again)
        self.on_event(
            "duplicate_sequence",
            {
                "wal_sequence": seq,
                "chunks": [
                    {"file": fr.url, "first": str(chunk.first), "rows": chunk.rows}
                    for f in again
                    for fr, chunk in f.chunks.items()
                ],
            },
        )
        for f in again:
            f.done, f.seq = False, None
            self._outbox.appendleft(f)

    def _overwritten(self, seq: int, landed: Landed) -> None:
        if not landed:  # a third answer with a sequence already handled as a duplicate
            return
        self.stats.overwritten += 1
        self.on_event(
            "overwritten_after_checkpoint",
            {
                "wal_sequence": seq,
                "files": [{"file": fr.url, "from": start.to_dict()} for fr, start in landed],
            },
        )
        for fr, start in landed:
            if fr.redo_from is None or _position(start) < _position(fr.redo_from):
                fr.redo_from = start
            self.on_checkpoint(fr)

    # --- checkpoints --------------------------------------------------------------------------

    def _settled(self, flight: Flight) -> bool:
        if not flight.done:
            return False
        oldest = min(self._in_flight, default=self._next_index)
        return oldest >= flight.barrier

    def _advance_all(self) -> None:
        for fr in self.files:
            if not fr.done and (fr.flights or fr.reader_done):
                self._advance(fr)

    def _advance(self, fr: FileRun) -> None:
        moved = False
        while fr.flights and self._settled(fr.flights[0]):
            flight = fr.flights.popleft()
            chunk = flight.chunks[fr]
            start, fr.committed = fr.committed, chunk.resume
            moved = True
            if flight.dropped:
                continue
            seq = flight.seq
            assert seq is not None
            # Settled: nothing in flight can collide with it any more. Keep its sequence and
            # where it started (a server whose wal_highwater went back may reuse it), not its
            # chunk's bytes.
            landed = self._seen.get(seq)
            if not isinstance(landed, list):  # the first of its files to settle
                landed = self._seen[seq] = []
            landed.append((fr, start))
            if len(self._seen) > 2 * SETTLED_WINDOW:
                self._forget_oldest_settled()
            fr.acks.append(Ack(seq, flight.digest, start.to_dict(), flight.rows))
            fr.rows += chunk.rows
            fr.bytes += chunk.size
            fr.wal_first = seq if fr.wal_first is None else min(fr.wal_first, seq)
            fr.wal_last = seq if fr.wal_last is None else max(fr.wal_last, seq)
        if fr.reader_done and not fr.flights and not fr.done:
            if fr.tail is not None:
                fr.committed = fr.tail
            fr.done = True
            moved = True
            self.stats.files_done += 1
        if moved:
            self.on_checkpoint(fr)

    def _forget_oldest_settled(self) -> None:
        """Keep the last ``SETTLED_WINDOW`` settled sequences: a sequence reused after that many
        later writes is past any racing append; memory stays flat on long runs."""
        oldest = list(itertools.islice(self._seen.items(), len(self._seen) - SETTLED_WINDOW))
        for seq, value in oldest:
            if isinstance(value, list):  # requests still unsettled are kept
                del self._seen[seq]

    def _drain(self) -> None:
        """Wait (bounded) for requests in flight so their rows can be checkpointed."""
        bound = min(self.drain_timeout, STOP_DRAIN_S) if self.stop.is_set() else self.drain_timeout
        deadline = time.monotonic() + bound
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            done, _ = wait(self._pending, timeout=remaining, return_when=FIRST_COMPLETED)
            for future in done:
                flight = self._pending.pop(future)
                self._in_flight.discard(flight.index)
                try:
                    self._answer(flight, future)
                except ElaxError as exc:  # a rejected row while draining: keep the first error
                    if self._failure is None:
                        self._failure = exc
        if self._pending:
            # Abandoned: their requests may still land; they are not checkpointed and are
            # re-sent on resume (upserts are idempotent).
            self._in_flight.update(f.index for f in self._pending.values())
            self._pending.clear()
        self._advance_all()


def _position(point: ResumePoint) -> tuple[int, int, int]:
    return (point.offset, point.line, point.row)


def file_rows(
    format: str,
    compression: str,
    storage_options: dict[str, Any],
    columns: list[str] | None,
    read_urls: Mapping[str, str] | None = None,
) -> Callable[[FileRun], Iterable[Any]]:
    """The row reader for a ``FileRun``: ``open_source`` from its resume point.

    ``fr.url`` is the file's key (no credentials); ``read_urls`` maps a key to the URL
    to read when they differ (a signed URL, see ``live.snapshot``)."""
    real = read_urls or {}

    def rows(fr: FileRun) -> Iterable[Any]:
        return open_source(
            real.get(fr.url, fr.url),
            format,  # type: ignore[arg-type]
            compression,
            storage_options,
            fr.start,
            columns=columns,
            decode=False,  # the row mapper decodes NDJSON lines itself, faster
        )

    return rows


__all__ = [
    "FileRun",
    "Flight",
    "MappedRow",
    "Pipeline",
    "PipelineStats",
    "check_accounts",
    "file_rows",
]
