"""What the pipeline tracks: requests in flight, files' progress, the run's counters.

``Flight`` (one request: its chunks, size, body and operations digest), ``FileRun``
(one source file's progress in this run, and its acknowledged writes) and
``PipelineStats``, plus the per-file row accounting check. Plain data with the
little behaviour that belongs to it: ``apply.pipeline`` drives them, and the
checkpointer turns a ``FileRun`` into a ledger entry.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from elax_plan.apply.chunker import FRAME_BYTES, Chunk, body_for
from elax_plan.apply.readers import ResumePoint
from elax_plan.errors import RowsUnaccounted
from elax_plan.live.delivery import ops_digest
from elax_plan.state import Ack


@dataclass(eq=False)
class Flight:
    """One request on its way: submitted (``index``), acknowledged (``seq``), settled.

    It carries one chunk, or the last chunks of several files (``chunks``: each file's, in
    file order); it sits in the queue of every file it carries from the moment it is formed.
    ``rows`` and ``size`` (the body's bytes) are kept as chunks are added: a shared request
    can carry thousands.
    """

    chunks: dict[FileRun, Chunk]
    rows: int
    size: int
    index: int = -1
    seq: int | None = None
    barrier: int = 0  # requests with a smaller index had to be answered before it settles
    done: bool = False
    dropped: bool = False  # its one row was rejected after a 413: nothing to acknowledge
    _body: bytes | None = None
    _digest: str | None = None

    @classmethod
    def of(cls, fr: FileRun, chunk: Chunk) -> Flight:
        return cls({fr: chunk}, chunk.rows, chunk.size)

    def add(self, fr: FileRun, chunk: Chunk) -> None:
        """Carry ``fr``'s last chunk too (before the request is first sent)."""
        self.size = self.size_with(chunk)
        self.rows += chunk.rows
        self.chunks[fr] = chunk

    def size_with(self, chunk: Chunk) -> int:
        """The body's size if ``chunk`` were added: its documents and a comma."""
        return self.size + 1 + chunk.size - FRAME_BYTES

    @property
    def digest(self) -> str:
        """The operations digest of the body (``live.delivery.ops_digest``), once."""
        if self._digest is None:
            self._digest = ops_digest(
                item.id for chunk in self.chunks.values() for item in chunk.items
            )
        return self._digest

    @property
    def body(self) -> bytes:
        """The request body; a shared request's is built once, when it is first sent."""
        if self._body is None:
            if len(self.chunks) == 1:
                self._body = next(iter(self.chunks.values())).body
            else:
                self._body = body_for(
                    [item.document for chunk in self.chunks.values() for item in chunk.items]
                )
        return self._body


@dataclass(eq=False)
class FileRun:
    """One source file's progress in this run, starting from the ledger's resume point."""

    url: str
    fingerprint: str
    size: int
    start: ResumePoint
    committed: ResumePoint
    rows: int = 0  # acknowledged rows (ledger total, this run's included)
    bytes: int = 0  # acknowledged request bytes
    wal_first: int | None = None
    wal_last: int | None = None
    flights: deque[Flight] = field(default_factory=deque)
    reader_done: bool = False
    tail: ResumePoint | None = None  # consumed point at end of file (past trailing rejects)
    done: bool = False
    # A checkpointed chunk from here was overwritten on the server: write the file again
    # from this point (the ledger keeps it partial, resuming here).
    redo_from: ResumePoint | None = None
    # Acknowledged, settled writes with this file's rows (the ledger's, then this run's):
    # what the delivery proof checks.
    acks: list[Ack] = field(default_factory=list)
    read: int = 0  # rows read in this run (valid or not)
    rejected: int = 0  # rows of this run handed to the reject policy
    start_rows: int = field(init=False)  # ``rows`` when the run started

    def __post_init__(self) -> None:
        self.start_rows = self.rows

    @property
    def acked(self) -> int:
        """Rows acknowledged in this run."""
        return self.rows - self.start_rows


# Kept from the first pass when lost rows are re-sent: the ids are the same rows again.
_NOT_SUMMED = frozenset({"max_acked_seq", "unique_ids", "duplicate_rows", "duplicate_ids"})


@dataclass
class PipelineStats:
    rows_read: int = 0  # rows read from the source in this run, valid or not
    rows_rejected: int = 0  # of those, rows handed to the reject policy
    unique_ids: int = 0  # distinct ids among the rows sent
    duplicate_rows: int = 0  # rows sent whose id an earlier row of this run had
    duplicate_ids: int = 0  # ids sent more than once
    rows_acked: int = 0
    bytes_acked: int = 0
    requests: int = 0
    resends: int = 0
    duplicate_sequences: int = 0
    splits: int = 0
    overwritten: int = 0  # settled chunks whose WAL file a later write reused
    files_done: int = 0
    last_acked_seq: int | None = None
    min_acked_seq: int | None = None
    max_acked_seq: int = 0
    resent_files: int = 0  # files written again in this run: the WAL lost their rows

    def plus(self, later: PipelineStats) -> PipelineStats:
        """This run's totals after ``later``, a pipeline that re-sent lost rows."""
        mins = [s for s in (self.min_acked_seq, later.min_acked_seq) if s is not None]
        summed = {
            f.name: getattr(self, f.name) + getattr(later, f.name)
            for f in dataclasses.fields(self)
            if f.type == "int" and f.name not in _NOT_SUMMED
        }
        return dataclasses.replace(
            self,
            **summed,
            last_acked_seq=later.last_acked_seq or self.last_acked_seq,
            min_acked_seq=min(mins) if mins else None,
            max_acked_seq=max(self.max_acked_seq, later.max_acked_seq),
        )


def check_accounts(files: Iterable[FileRun]) -> None:
    """Raise ``RowsUnaccounted`` unless, for every file finished in this run, rows read equal
    rows acknowledged plus rows rejected. It should never happen: a bug detector."""
    wrong = [fr for fr in files if fr.done and fr.read != fr.acked + fr.rejected]
    if not wrong:
        return
    shown = "; ".join(
        f"{fr.url}: {fr.read:,} read, {fr.acked:,} acknowledged, {fr.rejected:,} rejected"
        for fr in wrong[:5]
    )
    raise RowsUnaccounted(
        f"Rows read do not add up to rows acknowledged plus rows rejected for "
        f"{len(wrong)} file(s): {shown}{'…' if len(wrong) > 5 else ''}.",
        "This is a bug in elax-plan: every row it reads is either written or rejected, so the "
        "run stops before verifying rather than report a success it cannot account for.",
        "Please report it with this message and the run's events.ndjson; running "
        "`elax-plan apply` again rewrites nothing that was acknowledged.",
    )
