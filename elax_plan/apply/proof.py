"""What apply does with a delivery proof (``live.delivery``): stamps, lost files, the error.

Owns turning a ``DeliveryProof`` into ledger entries — proven writes keep
their WAL object's stamp, a file whose rows the WAL lost goes back to partial
from its first lost write (its later acknowledged writes are dropped: they
are sent again) — and into the run's events and the ``WritesOverwritten``
error that names the files. It reads and writes nothing itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from elax_plan.apply.checkpoints import acks_before
from elax_plan.errors import WritesOverwritten
from elax_plan.live.delivery import DeliveryProof
from elax_plan.state import FileEntry


def stamped(files: Mapping[str, FileEntry], proof: DeliveryProof) -> dict[str, FileEntry]:
    """``files`` with the proof's WAL-object stamps on the writes it proved."""
    out = dict(files)
    for url, entry in files.items():
        if any(a.seq in proof.proven for a in entry.acks):
            acks = [
                dataclasses.replace(a, proof=proof.proven[a.seq]) if a.seq in proof.proven else a
                for a in entry.acks
            ]
            out[url] = dataclasses.replace(entry, acks=acks)
    return out


def proven_entries(files: Mapping[str, FileEntry], proof: DeliveryProof) -> dict[str, FileEntry]:
    """The ledger's entries after ``proof``: stamped, and lost files partial again."""
    entries = stamped(files, proof)
    for url, lost in proof.lost.items():
        entry = entries[url]
        entries[url] = dataclasses.replace(
            entry,
            status="partial",
            resume=dict(lost.start),
            acks=acks_before(entry.acks, lost.start),
        )
    return entries


def report(proof: DeliveryProof, events: Callable[[str, dict[str, Any]], None]) -> None:
    """The proof's events: one summary, and one ``overwritten`` per file with lost rows."""
    events(
        "delivery_proof", {"checked": proof.checked, "read": proof.read, "lost": len(proof.lost)}
    )
    for lost in proof.lost.values():
        events(
            "overwritten",
            {
                "file": lost.url,
                "wal_sequence": lost.seq,
                "from": dict(lost.start),
                "reason": lost.reason,
            },
        )


def overwritten_error(proof: DeliveryProof) -> WritesOverwritten:
    """The run's error when the proof found lost rows: which files, why, what next."""
    lost = list(proof.lost.values())
    named = "; ".join(f"{w.url} (WAL-{w.seq}: {w.reason})" for w in lost[:5])
    return WritesOverwritten(
        f"The WAL no longer holds rows the server acknowledged, in {len(lost)} file(s): "
        f"{named}{'…' if len(lost) > 5 else ''}.",
        detail="Those files are marked to be written again from the first lost write.",
        hint="Run `elax-plan apply` again: it re-sends those rows (upserts are idempotent). "
        "Keep other writers and compactions off the namespace while it writes.",
    )
