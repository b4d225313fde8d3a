"""Duplicate ids in one run: how many distinct ids it sent, and which it sent more than once.

Owns ``IdTracker``. elacsym keeps the last upsert of an id (CONTRACT §2.3: repeated upserts of
one id, the last wins), so a source that holds an id twice — in one file, in two files, or as
``7`` and ``"7"`` (an integer id is sent as its decimal string) — ends up as one document, from
the later row. Every row is still sent; the tracker only counts and reports: rows, distinct
ids, and per duplicated id its number of rows and its first and last place (``FILE:LINE`` or
``FILE: row N``), in the order the rows were read.

Memory: a distinct id costs 16 bytes — its 64-bit hash (``hash(str)``, salted per process) and
the packed place of its first row — in sorted numpy arrays kept as a few runs of at least
doubling size (merged as in a log-structured tree: N ids cost O(N log N), a lookup one binary
search per run). Only ids seen twice keep their text and places, in a dict. Measured per
million distinct ids: 16 MB here, against ~69 MB for a Python set of the hashes and ~110 MB for
a dict of id → place; ``hash`` costs 73 ns an id where an 8-byte blake2b digest costs 690 ns.
Rows are handed over a closed chunk at a time (``add``) and hashed in batches of
``BATCH_ROWS``, so the reading loop does nothing per row for this. Two different ids share a
64-bit hash with probability about n²/2⁶⁵ (3 in a million for 10 million ids): one would then
be reported as a duplicate of the other; no row is dropped either way.

Tracking is per run: a resumed run does not know the ids that earlier runs sent.

Must not: drop, keep or re-order rows (it holds no documents), or do I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from elax_plan.apply.readers import Location
from elax_plan.apply.rows import MappedRow

BATCH_ROWS = 1 << 15
"""Rows hashed and looked up together (their ids and line numbers are held until then)."""

_ROW_FLAG = 1 << 40  # the number is a Parquet row index, not an NDJSON line
_FILE_SHIFT = 41  # file index above: 2**22 files, lines or rows below 2**40
_NUMBER_MASK = _ROW_FLAG - 1

Keys = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(slots=True)
class Duplicate:
    """An id read more than once: how many rows carried it, where first and where last."""

    id: str
    rows: int
    first: Location
    last: Location

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "rows", "first": {"file", "line"|"row"}, "last": {…}}``."""
        return {
            "id": self.id,
            "rows": self.rows,
            "first": self.first.to_dict(),
            "last": self.last.to_dict(),
        }


class IdTracker:
    """The ids of one run's rows, in the order they were read (see the module docstring)."""

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        self.batch_rows = batch_rows
        self._rows = 0
        self._unique = 0
        self._duplicates: dict[int, Duplicate] = {}
        self._ids: list[str] = []
        self._numbers: list[int] = []
        self._bases: list[int] = []  # per chunk: file index and kind, packed
        self._lengths: list[int] = []  # per chunk: its rows
        self._runs: list[tuple[Keys, Keys]] = []  # (sorted hashes, packed first places)
        self._files: list[str] = []
        self._file_index: dict[str, int] = {}

    # --- taking rows ----------------------------------------------------------------------

    def add(self, items: Sequence[MappedRow]) -> None:
        """Take the rows of one closed chunk (all from one file, in reading order)."""
        if not items:
            return
        first = items[0].location
        index = self._file_index.get(first.url)
        if index is None:
            index = self._file_index[first.url] = len(self._files)
            self._files.append(first.url)
        self._ids += [item.id for item in items]
        if first.line is not None:
            self._numbers += [item.location.line for item in items]  # type: ignore[misc]
            self._bases.append(index << _FILE_SHIFT)
        else:
            self._numbers += [item.location.row for item in items]  # type: ignore[misc]
            self._bases.append(index << _FILE_SHIFT | _ROW_FLAG)
        self._lengths.append(len(items))
        if len(self._ids) >= self.batch_rows:
            self.flush()

    # --- what it found --------------------------------------------------------------------

    @property
    def rows(self) -> int:
        """Rows taken so far."""
        self.flush()
        return self._rows

    @property
    def unique_ids(self) -> int:
        """Distinct ids among them."""
        self.flush()
        return self._unique

    @property
    def duplicate_rows(self) -> int:
        """Rows whose id an earlier row of this run had (rows - unique ids)."""
        self.flush()
        return self._rows - self._unique

    def duplicates(self) -> list[Duplicate]:
        """Every id read more than once, in the order of its first row."""
        self.flush()
        return sorted(self._duplicates.values(), key=lambda d: self._sort_key(d.first))

    # --- batches --------------------------------------------------------------------------

    def flush(self) -> None:
        """Hash the rows held so far and look them up (``add`` does it every batch)."""
        n = len(self._ids)
        if not n:
            return
        ids = self._ids
        keys: Keys = np.fromiter(map(hash, ids), np.int64, n)
        places: Keys = np.fromiter(self._numbers, np.int64, n) + np.repeat(
            np.asarray(self._bases, np.int64), self._lengths
        )
        self._ids, self._numbers, self._bases, self._lengths = [], [], [], []
        self._rows += n
        # Not a stable sort (5x slower): rows of a repeated key are ordered below, and only
        # for the few keys that repeat.
        order = np.argsort(keys)
        ordered = keys[order]
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        ends = np.append(starts[1:], n)
        unique = ordered[starts]
        counts = ends - starts
        first, last = order[starts], order[ends - 1]
        for g in np.flatnonzero(counts > 1).tolist():
            group = order[starts[g] : ends[g]]
            first[g], last[g] = group.min(), group.max()
        earlier: Keys = np.full(len(unique), -1, np.int64)  # first place in an earlier batch
        for run_keys, run_places in self._runs:
            at = np.searchsorted(run_keys, unique)
            at[at == len(run_keys)] = 0
            hit = run_keys[at] == unique
            earlier[hit] = run_places[at[hit]]
        seen = earlier >= 0
        for g in np.flatnonzero((counts > 1) | seen).tolist():
            self._record(
                int(unique[g]),
                ids[int(first[g])],
                int(counts[g]),
                int(earlier[g]) if seen[g] else int(places[first[g]]),
                int(places[last[g]]),
                bool(seen[g]),
            )
        new = ~seen
        self._unique += int(new.sum())
        self._add_run(unique[new], places[first[new]])

    def _record(
        self, key: int, doc_id: str, rows: int, first: int, last: int, seen_before: bool
    ) -> None:
        known = self._duplicates.get(key)
        if known is not None:
            known.rows += rows
            known.last = self._location(last)
            return
        # Seen once in an earlier batch (an id seen twice is in the dict already), or
        # more than once in this one.
        total = rows + 1 if seen_before else rows
        self._duplicates[key] = Duplicate(
            doc_id, total, self._location(first), self._location(last)
        )

    def _add_run(self, keys: Keys, places: Keys) -> None:
        if not len(keys):
            return
        runs = self._runs
        runs.append((keys, places))
        # Each run at least twice the size of the next: O(log N) runs, each id merged
        # O(log N) times.
        while len(runs) > 1 and len(runs[-2][0]) < 2 * len(runs[-1][0]):
            (k1, p1), (k2, p2) = runs[-2], runs[-1]
            merged_keys = np.concatenate((k1, k2))
            order = np.argsort(merged_keys, kind="stable")  # two sorted runs: a linear merge
            runs[-2:] = [(merged_keys[order], np.concatenate((p1, p2))[order])]

    def _location(self, packed: int) -> Location:
        url = self._files[packed >> _FILE_SHIFT]
        number = packed & _NUMBER_MASK
        if packed & _ROW_FLAG:
            return Location(url, None, number)
        return Location(url, number)

    def _sort_key(self, location: Location) -> tuple[int, int]:
        number = location.line if location.line is not None else location.row
        return (self._file_index[location.url], number or 0)

    def memory_bytes(self) -> int:
        """Bytes of the arrays that remember distinct ids (the dict of duplicates aside)."""
        return sum(keys.nbytes + places.nbytes for keys, places in self._runs)


__all__ = ["BATCH_ROWS", "Duplicate", "IdTracker"]
