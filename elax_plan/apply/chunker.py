"""The chunker: packs serialised documents into write bodies of about ``target_bytes``.

Owns the portable write body (CONTRACT §2.6) — exactly ``{"upserts":[doc,doc,…]}``, never a
``deletes: null``, never empty — and its size rules: a chunk closes when the next row would take
it past ``target_bytes``; no body is ever larger than ``max_bytes`` (the server's cap, 2 MiB on
real elacsym), and a row whose body would be larger even alone is an invalid row. Bodies are the
documents joined as bytes; nothing is re-serialised.

Each chunk carries the resume point after its last row — or after the rejected rows that
followed it, if the chunker was told of them (``add`` returning an ``InvalidRow``, or ``skip``)
— so that acknowledging a chunk moves the file's checkpoint past everything it accounts for.
One chunk never spans two files: call ``flush`` at the end of each file.

Must not: send anything, retry, or decide policy for invalid rows (``rejects`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elax_plan.apply.readers import EXCERPT_CHARS, Location, ResumePoint
from elax_plan.apply.rows import InvalidRow, MappedRow

PREFIX = b'{"upserts":['
SUFFIX = b"]}"
FRAME_BYTES = len(PREFIX) + len(SUFFIX)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One write body and what it covers: rows, first/last location, resume point after it."""

    body: bytes
    rows: int
    first: Location
    last: Location
    resume: ResumePoint
    items: tuple[MappedRow, ...] = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.body)


def body_for(documents: list[bytes]) -> bytes:
    """The write body holding ``documents`` (at least one)."""
    # One join, one allocation: joining the documents first and framing them after costs a
    # second megabyte-sized buffer per body, which measured 25x slower (page faults).
    parts = [PREFIX]
    for document in documents:
        parts.append(document)
        parts.append(b",")
    parts[-1] = SUFFIX
    return b"".join(parts)


def _chunk(items: list[MappedRow], resume: ResumePoint) -> Chunk:
    body = body_for([item.document for item in items])
    return Chunk(body, len(items), items[0].location, items[-1].location, resume, tuple(items))


class Chunker:
    """Packs ``MappedRow``s into ``Chunk``s; see the module docstring for the rules."""

    def __init__(self, target_bytes: int, max_bytes: int) -> None:
        if max_bytes <= FRAME_BYTES:
            raise ValueError(f"max_bytes must be more than {FRAME_BYTES}, got {max_bytes}")
        if target_bytes < 1:
            raise ValueError(f"target_bytes must be positive, got {target_bytes}")
        self.max_bytes = max_bytes
        self._target = min(target_bytes, max_bytes)
        self._items: list[MappedRow] = []
        self._size = FRAME_BYTES  # body size of the open chunk, commas included
        self._skipped: ResumePoint | None = None  # past rejected rows after the last added row
        self._consumed: ResumePoint | None = None

    @property
    def target_bytes(self) -> int:
        return self._target

    @property
    def consumed(self) -> ResumePoint | None:
        """The resume point after the last row given to the chunker (added or skipped)."""
        return self._consumed

    @property
    def open_rows(self) -> int:
        """Rows in the open (not yet returned) chunk."""
        return len(self._items)

    def add(self, row: MappedRow) -> Chunk | InvalidRow | None:
        """Add a row; returns the chunk it closed, an ``InvalidRow`` if it can never fit, or None.

        A returned ``InvalidRow`` is already accounted for (as by ``skip``): hand it to the
        reject policy.
        """
        size = len(row.document)
        items = self._items
        if items and items[0].location.url != row.location.url:  # _check_file, inlined
            self._check_file(row.location)
        if FRAME_BYTES + size > self.max_bytes:
            invalid = InvalidRow(
                row.location,
                row.resume,
                f"row larger than max_request_bytes ({self.max_bytes:,} bytes) even alone: "
                f"its write body would be {FRAME_BYTES + size:,} bytes",
                row.document[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS] + "…",
            )
            self.skip(invalid)
            return invalid
        closed = None
        if items and self._size + 1 + size > self._target:
            closed = self._close()
            items = self._items
        if items:
            self._size += 1 + size
        else:
            self._size = FRAME_BYTES + size
        items.append(row)
        self._skipped = None
        self._consumed = row.resume
        return closed

    def skip(self, row: InvalidRow) -> None:
        """Note a rejected row, so that the next chunk's resume point moves past it."""
        self._check_file(row.location)
        self._skipped = row.resume
        self._consumed = row.resume

    def flush(self) -> Chunk | None:
        """Close and return the open chunk (None if it has no rows). Call at the end of a file."""
        if not self._items:
            return None
        return self._close()

    def lower_target(self, new_target: int) -> None:
        """Lower the target for the rest of the run (after a 413); never raises it."""
        if new_target < 1:
            raise ValueError(f"target_bytes must be positive, got {new_target}")
        self._target = min(self._target, new_target)

    def split(self, chunk: Chunk) -> tuple[Chunk, Chunk]:
        """Halve ``chunk`` by bytes (for a 413 answer); both halves keep exact resume points."""
        if chunk.rows < 2:
            raise ValueError("a chunk of one row cannot be split")
        half = chunk.size // 2
        running = FRAME_BYTES
        cut = 0
        while cut < chunk.rows - 1:  # both halves keep at least one row
            running += len(chunk.items[cut].document) + 1
            cut += 1
            if running >= half:
                break
        first, second = list(chunk.items[:cut]), list(chunk.items[cut:])
        return _chunk(first, first[-1].resume), _chunk(second, chunk.resume)

    def _close(self) -> Chunk:
        items = self._items
        chunk = _chunk(items, self._skipped or items[-1].resume)
        self._items = []
        self._size = FRAME_BYTES
        self._skipped = None
        return chunk

    def _check_file(self, location: Location) -> None:
        if self._items and self._items[0].location.url != location.url:
            raise ValueError(
                f"a chunk cannot span files ({self._items[0].location.url} and {location.url}): "
                "call flush() at the end of each file"
            )
