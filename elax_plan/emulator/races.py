"""Racing appends as the real node has them (CONTRACT §7 H1), seeded and reproducible.

The real node (72e6998, ac782e1) appends without a lock: it reads
``router.json``, creates ``WAL-{seq}.json`` with truncate and writes it in place,
then rewrites ``router.json`` through the one shared ``router.json.tmp``. Two
appends that overlap can therefore end in one of three ways:

- ``overwrite``: both read the same ``wal_highwater``, both answer 200 with the
  same sequence, and the later file replaces the earlier acknowledged one;
- ``torn``: both files were truncated before either was written, the shorter
  write landed last, and the file holds its bytes followed by the tail of the
  longer one: both answer 200, and every later replay of the WAL fails;
- ``error_after_write``: the rename of the shared temporary file fails for the
  loser, which answers 500 although its WAL file (the one that survives) was
  written; the other writer's acknowledged batch is gone.

Which way an append goes is not left to thread timing: each namespace draws
from its own generator seeded by ``seed`` and the namespace name, two numbers
per append in arrival order. An append can only race with the append before
it, and only if that one had not answered yet when this one arrived, so a
single sequential writer never races (as with the real node).

Owns the decisions and the outcome counts only; must not touch files (the
namespace writes what an outcome leaves behind).
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Literal, TypeAlias

Outcome: TypeAlias = Literal["overwrite", "torn", "error_after_write"]
OUTCOMES: tuple[Outcome, ...] = ("overwrite", "torn", "error_after_write")
RACE_RATE = 0.3  # share of overlapping appends that race with the one before them


@dataclass
class Append:
    """One append's place in the race: when it arrived, and when it answered."""

    arrived: int
    answered: int | None = None


def torn_bytes(earlier: bytes, later: bytes) -> bytes:
    """What one file holds when both writes hit it after both truncations: the later write
    over the earlier one, so a longer earlier write leaves its tail behind."""
    return later + earlier[len(later) :]


class RaceModel:
    """The seeded racing decisions of one namespace, and the outcomes that happened."""

    def __init__(self, seed: int | None, namespace: str) -> None:
        self._rng = random.Random(f"{seed}:{namespace}") if seed is not None else random.Random()
        self._clock = itertools.count(1)
        self._lock = threading.Lock()
        self._previous: Append | None = None
        self.outcomes: Counter[Outcome] = Counter()

    def arrive(self) -> Append:
        """Call when an append enters the server, before it waits for anything."""
        return Append(next(self._clock))

    def answer(self, append: Append) -> None:
        """Call when the append has its answer (200 or not)."""
        append.answered = next(self._clock)

    def decide(self, append: Append) -> Outcome | None:
        """Whether ``append`` races with the previous append, and how; call in append order.

        Two draws per append whatever happens, so the decisions for the n-th append of a
        namespace depend on the seed alone.
        """
        with self._lock:
            race, pick = self._rng.random(), self._rng.random()
            previous, self._previous = self._previous, append
        if previous is None:
            return None
        overlapped = previous.answered is None or previous.answered > append.arrived
        if not overlapped or race >= RACE_RATE:
            return None
        return OUTCOMES[min(int(pick * len(OUTCOMES)), len(OUTCOMES) - 1)]

    def happened(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
