"""Delivery proof: do the WAL objects still hold the writes the server acknowledged?

An acknowledgement is not proof that the rows stay written. On the real node
a racing append (hazard H1) or a compaction that sets ``wal_highwater`` back
(H2) makes a later write reuse the sequence and overwrite the acknowledged
``WAL-<seq>`` file — after elax-plan checkpointed past it. So what a ledger
records as written is proven against the store before anything new is
written, and before ``plan`` says "No changes":

- ``wal_highwater`` below an acknowledged sequence: the next write would
  reuse (overwrite) that file, so its rows count as lost;
- ``WAL-<seq>`` missing, unreadable (torn), or holding other operations than
  were sent (its ``ops_digest`` differs): lost.

With ``sample_every`` above 1 (``verify.delivery: sample``) every write is still
checked against ``wal_highwater`` and the WAL listing, but only about one in
``sample_every`` — chosen by a hash of its sequence, so every proof picks the same
ones — is read back: an overwrite of the others goes unnoticed.

Each file's first lost write is where it is written again from. A write
proven once keeps its WAL object's ``size:mtime``; later proofs re-read only
objects whose listing entry changed, so a proof costs one router read, one
WAL listing and the reads of what is new or changed.

Owns ``ops_digest`` (the identity of a request's operations: kind and id of
each, in order; apply computes it from the rows it sends, this module from the
WAL batch) and ``prove_delivery``. Read-only: it never repairs anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import simdjson

from elax_plan.live.model import LostWrite, WalObject
from elax_plan.live.store import StoreReader
from elax_plan.retry import Retrier
from elax_plan.state import Ack

T = TypeVar("T")

__all__ = [
    "SAMPLE_EVERY",
    "DeliveryProof",
    "ops_digest",
    "prove_delivery",
    "sample_every",
    "sampled",
    "wal_ops_digest",
]

SAMPLE_EVERY = 8
"""``verify.delivery: sample`` reads back about one acknowledged write in this many."""


def sample_every(mode: str) -> int | None:
    """``prove_delivery``'s ``sample_every`` for a ``verify.delivery`` mode; None: no proof."""
    return {"full": 1, "sample": SAMPLE_EVERY}.get(mode)


def ops_digest(upsert_ids: Iterable[str]) -> str:
    """The digest of a write of these upserts, in request order (16 hex digits)."""
    h = hashlib.blake2b(digest_size=8)
    for doc_id in upsert_ids:
        h.update(b"u\x00")
        h.update(doc_id.encode())
        h.update(b"\x00")
    return h.hexdigest()


def wal_ops_digest(data: bytes) -> str | None:
    """``ops_digest`` of a WAL batch file (CONTRACT §4.2); None when it is not a readable
    batch (torn or truncated by a racing append, or not elacsym's).

    simdjson validates the whole document but builds Python objects only for what is read
    (each operation's kind and id, not the vectors): ~1.5x faster than ``orjson.loads``,
    which is most of what a proof costs. A parser per call: a document's proxies must not
    outlive the next parse of a shared one."""
    try:
        batch: Any = simdjson.Parser().parse(data)  # a JSON shape checked as it is read
        h = hashlib.blake2b(digest_size=8)
        for op in batch["operations"]:
            kind = op["op"]
            if kind == "upsert":
                h.update(b"u\x00")
                h.update(str(op["document"]["id"]).encode())
            else:
                h.update(f"{kind[0]}\x00".encode())
                h.update(str(op.get("id", "")).encode())
            h.update(b"\x00")
        return h.hexdigest()
    except (ValueError, KeyError, TypeError, IndexError):
        return None


@dataclass
class DeliveryProof:
    """What a proof found: per source file its first lost write, and the proofs to keep."""

    wal_highwater: int
    lost: dict[str, LostWrite] = field(default_factory=dict)
    proven: dict[int, str] = field(default_factory=dict)  # seq → size:mtime of its WAL object
    lost_upserts: int = 0  # upserts of the acknowledged requests the WAL lost
    checked: int = 0  # acknowledged writes looked at
    read: int = 0  # WAL objects read (the rest were unchanged since proven)

    @property
    def ok(self) -> bool:
        return not self.lost


def stamp(obj: WalObject) -> str:
    """What a proven WAL object is recognised by later: ``size:mtime``."""
    return f"{obj.size}:{obj.modified!r}"


def prove_delivery(
    reader: StoreReader,
    namespace: str,
    acks: Mapping[str, Iterable[Ack]],
    *,
    skip_through: int = 0,
    sample_every: int = 1,
    retrier: Retrier | None = None,
) -> DeliveryProof:
    """Prove every file's acknowledged writes against the store (see the module docstring).

    ``skip_through``: writes at or below this sequence are not checked (their WAL objects
    were trimmed on purpose after they were indexed). ``sample_every``: read back one write
    in about this many (1: every one). ``retrier`` retries each read that fails transiently.
    """
    retry = retrier.call if retrier is not None else _once
    router = retry(lambda: reader.read_namespace(namespace), what="router")
    proof = DeliveryProof(router.wal_highwater)
    if not any(True for file_acks in acks.values() for _ in file_acks):
        return proof
    listing = {w.sequence: w for w in retry(lambda: reader.list_wal(namespace), what="wal list")}
    digests: dict[int, str | None] = {}
    lost_requests: dict[int, int] = {}
    for url, file_acks in acks.items():
        for ack in sorted(file_acks, key=lambda a: a.seq):
            if ack.seq <= skip_through:
                continue
            proof.checked += 1
            reason = _lost_reason(
                lambda seq: retry(lambda: reader.read_wal(namespace, seq), what="wal read"),
                ack,
                router.wal_highwater,
                listing,
                digests if sampled(ack.seq, sample_every) else None,
            )
            if reason is None:
                seen = stamp(listing[ack.seq])
                if ack.seq in digests or ack.proof == seen:  # read back, or unchanged since
                    proof.proven[ack.seq] = seen
                continue
            lost_requests[ack.seq] = ack.upserts
            if url not in proof.lost:  # the file is written again from its first lost write
                proof.lost[url] = LostWrite(url, ack.seq, dict(ack.start), reason)
    proof.lost_upserts = sum(lost_requests.values())
    proof.read = len(digests)
    return proof


def sampled(seq: int, every: int) -> bool:
    """Whether a proof with ``sample_every=every`` reads back the write of ``seq``."""
    if every <= 1:
        return True
    digest = hashlib.blake2b(seq.to_bytes(8, "big"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % every == 0


def _once(fn: Callable[[], T], *, what: str = "") -> T:
    return fn()


def _lost_reason(
    read_wal: Callable[[int], bytes | None],
    ack: Ack,
    highwater: int,
    listing: Mapping[int, WalObject],
    digests: dict[int, str | None] | None,
) -> str | None:
    """Why ``ack``'s rows are no longer (or soon not) in the WAL; None when they are.

    ``digests`` None: the write is not in the sample, so its object is not read back."""
    name = f"WAL-{ack.seq}"
    if ack.seq > highwater:
        return (
            f"router.json's wal_highwater is {highwater}, below the acknowledged write {name}: "
            "the next write would overwrite it (hazard H2: a compaction or a racing append "
            "set it back)"
        )
    obj = listing.get(ack.seq)
    if obj is None:
        return f"{name} is missing from the WAL"
    if ack.proof is not None and ack.proof == stamp(obj):
        return None  # proven before, and the object is unchanged since
    if digests is None:
        return None  # listed, at or below the router: all a write out of the sample gets
    if ack.seq not in digests:
        data = read_wal(ack.seq)
        digests[ack.seq] = None if data is None else wal_ops_digest(data)
        if data is None:
            return f"{name} is missing from the WAL"
    found = digests[ack.seq]
    if found is None:
        return f"{name} is not a readable WAL batch (torn by a racing append?)"
    if found != ack.digest:
        return (
            f"{name} holds other operations than were sent (digest {found}, sent "
            f"{ack.digest}): another write reused its sequence (hazard H1/H2)"
        )
    return None
