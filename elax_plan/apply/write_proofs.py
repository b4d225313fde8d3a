"""Delivery proofs while the writes run (``verify.delivery``): a long run finds lost writes early.

Owns when a proof runs during the writes — at a checkpoint, at least ``interval``
seconds after the last one, and never sooner than ``SPACING`` times the last proof's
own cost after it, so proving stays a small share of the run however large the WAL
listing grows — and what it leaves behind. Each write it proves keeps its WAL
object's stamp on the file's acknowledged writes, so the proof after the writes
re-reads only what is new. A lost write is reported at once (an ``overwritten_found``
event and a warning in the log), while the run is still writing, and left to the
proof after the writes (``ApplyRun.deliver``), which puts the file back to partial
from its first lost write and re-sends it in this run: one place moves a checkpoint
back, not two. A proof that cannot read the store during the writes is reported
and skipped; the one after the writes decides.

Also owns ``Prover``: one delivery proof of this run's target with the plan's
``delivery.sample_every``, used during and after the writes alike.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import structlog

from elax_plan.apply.checkpoints import acks_before
from elax_plan.apply.flights import FileRun
from elax_plan.apply.run_files import RunEvents
from elax_plan.errors import ElaxError
from elax_plan.live.delivery import DeliveryProof, prove_delivery
from elax_plan.live.store import StoreReader
from elax_plan.retry import Interrupted, Retrier
from elax_plan.state import Ack

log = structlog.get_logger("elax_plan.apply")

PROOF_INTERVAL = 30.0
"""Seconds between two proofs during the writes, at least."""
SPACING = 20.0
"""A proof during the writes waits at least this many times the last one's duration: the
proofs take at most ~1/21 of the writing time."""


@dataclass(frozen=True)
class Prover:
    """Proves acknowledged writes of one namespace, reading back one in ``sample_every``."""

    reader: StoreReader
    namespace: str
    sample_every: int
    retrier: Retrier

    def __call__(
        self, acks: Mapping[str, Iterable[Ack]], *, skip_through: int = 0
    ) -> DeliveryProof:
        return prove_delivery(
            self.reader,
            self.namespace,
            acks,
            skip_through=skip_through,
            sample_every=self.sample_every,
            retrier=self.retrier,
        )


class WriteProofs:
    """The checkpoint hook of the pipeline: saves the file's progress, and now and then
    proves what the files being written have acknowledged so far."""

    def __init__(
        self,
        prove: Callable[[Mapping[str, Iterable[Ack]]], DeliveryProof] | None,
        update: Callable[[FileRun], None],
        events: RunEvents,
        *,
        interval: float = PROOF_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prove = prove
        self.update = update
        self.events = events
        self.interval = interval
        self.clock = clock
        self.last = clock()
        self.cost = 0.0
        self.runs: dict[str, FileRun] = {}
        self.reported: set[tuple[str, int]] = set()

    def checkpoint(self, fr: FileRun) -> None:
        """``Pipeline.on_checkpoint``: checkpoint ``fr``; prove when a proof is due."""
        self.update(fr)
        if self.prove is None:
            return
        self.runs[fr.url] = fr
        started = self.clock()
        if started - self.last < max(self.interval, SPACING * self.cost):
            return
        self.last = started
        self.prove_now()
        self.cost = self.clock() - started

    def prove_now(self) -> None:
        """One proof of the settled acknowledged writes of the files this run writes."""
        assert self.prove is not None
        acks = {url: _provable(fr) for url, fr in self.runs.items()}
        if not any(a.proof is None for file_acks in acks.values() for a in file_acks):
            return  # everything acknowledged so far is proven already
        try:
            proof = self.prove(acks)
        except Interrupted:
            return  # stopping: the pipeline sees the stop itself
        except ElaxError as exc:
            self.events("delivery_proof_skipped", {"phase": "writes", "error": exc.message})
            log.warning("delivery proof during the writes failed", error=exc.message)
            return
        for fr in self.runs.values():
            fr.acks[:] = [_stamped(a, proof) for a in fr.acks]
        self.events(
            "delivery_proof",
            {
                "phase": "writes",
                "checked": proof.checked,
                "read": proof.read,
                "lost": len(proof.lost),
            },
        )
        for lost in proof.lost.values():
            if (lost.url, lost.seq) in self.reported:
                continue
            self.reported.add((lost.url, lost.seq))
            self.events(
                "overwritten_found",
                {"file": lost.url, "wal_sequence": lost.seq, "reason": lost.reason},
            )
            log.warning(
                "an acknowledged write was lost: its rows are re-sent after the writes",
                file=lost.url,
                wal_sequence=lost.seq,
                reason=lost.reason,
            )


def _provable(fr: FileRun) -> list[Ack]:
    """``fr``'s acknowledged writes that still count: those before a point it is redone from."""
    if fr.redo_from is None:
        return list(fr.acks)
    return acks_before(fr.acks, fr.redo_from.to_dict())


def _stamped(ack: Ack, proof: DeliveryProof) -> Ack:
    seen = proof.proven.get(ack.seq)
    if seen is None or seen == ack.proof:
        return ack
    return dataclasses.replace(ack, proof=seen)
