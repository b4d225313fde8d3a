"""What apply does with a delivery proof (``live.delivery``): stamps, lost files, the error.

Owns turning a ``DeliveryProof`` into ledger entries — proven writes keep
their WAL object's stamp, a file whose rows the WAL lost goes back to partial
from its first lost write (its later acknowledged writes are dropped: they
are sent again) — and into the run's events and the ``WritesOverwritten``
error that names the files; and ``store_shows``, the first proof of all: after the
first acknowledgement ``target.store`` must show it, or it is not the node's data root.
Losses the start proof (the plan's) found are reported as a resend of round 0: the run's
own file steps write those rows again. It reads and writes nothing itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from typing import Any

from elax_plan.apply.checkpoints import acks_before
from elax_plan.errors import NotTheDataRoot, WritesOverwritten
from elax_plan.live.delivery import DeliveryProof
from elax_plan.live.model import NamespaceLive
from elax_plan.spec import TargetSpec, display_url
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


def report_start(
    proof: DeliveryProof | None,
    writing: Collection[str],
    events: Callable[[str, dict[str, Any]], None],
) -> None:
    """The start proof's losses (the plan proved the ledger's writes, e.g. those of a run that
    was killed): ``report``'s events, and a ``resend`` of round 0 for the lost files this run
    writes (its plan resumes them from their first lost write), so the summary lists each."""
    if proof is None or proof.ok:
        return
    report(proof, events)
    again = [url for url in proof.lost if url in writing]
    if again:
        events("resend", {"round": 0, "files": again})


def overwritten_error(files: list[str], rounds: int) -> WritesOverwritten:
    """The run's error when rows kept being lost after re-sending them ``rounds`` times."""
    named = ", ".join(files[:5])
    return WritesOverwritten(
        f"The WAL kept losing rows the server acknowledged: after {rounds} proofs and "
        f"re-sends in this run, {len(files)} file(s) still miss rows: {named}"
        f"{'…' if len(files) > 5 else ''}.",
        detail="Another writer or a compaction running beside the writes keeps overwriting "
        "them (hazards H1, H2); those files are marked to be written again from their first "
        "lost write.",
        hint="Keep other writers and compactions off the namespace while it writes, then run "
        "`elax-plan apply` again: it re-sends those rows (upserts are idempotent).",
    )


def store_shows(
    ns: NamespaceLive, seq: int, wal: Callable[[], bytes | None], target: TargetSpec
) -> None:
    """After the first acknowledgement, ``target.store`` must show it — its router at or past
    the sequence, or (a racing append set the router back, H1/H2, which the delivery proof
    handles) its ``WAL-<seq>`` object: else it is not the node's data root, and the
    throttle, the proof and the checks would all read another namespace than the node's."""
    if ns.wal_highwater >= seq or (ns.exists and wal() is not None):
        return
    raise NotTheDataRoot(
        f"target.store is not this node's data root: the node acknowledged a write as "
        f"wal_sequence {seq}, but {display_url(target.store)} shows wal_highwater "
        f"{ns.wal_highwater} for namespace '{target.namespace}' and no WAL-{seq}"
        + ("" if ns.exists else " (no router.json there)")
        + ".",
        detail="The write is checkpointed; nothing was lost.",
        hint="Point target.store at the node's data root (its local disk, a mounted volume or "
        "sftp://), then run `elax-plan apply` again.",
    )
