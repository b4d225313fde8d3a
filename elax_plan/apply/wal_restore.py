"""``elax-plan wal restore``: move WAL objects an earlier trim archived back into ``wal/``.

Every released elacsym node rebuilds a namespace from its WAL alone (CONTRACT
§4.1, §5), so objects archived under ``namespaces/<ns>/wal-archive/`` by an
elax-plan that still trimmed are documents the node loses at its next restart.
This undoes that archive, byte for byte.

Owns deciding what the restore does (``RestorePlan``, from the archive listing
and the WAL listing; an archived object whose sequence is also in ``wal/`` is
read on both sides and is either already in place — same bytes, an interrupted
restore — or a conflict) and doing it under the plan's lease and the namespace's
(``apply.leases``), so no ``apply`` of this plan or of another plan on the namespace
runs beside it. A conflict refuses the whole restore before
anything moves, naming each object: the one in ``wal/`` is what the node
replays and is never replaced. Names in the archive that are not WAL objects are
left where they are (any such name in ``wal/`` would stop the node loading the
namespace). Idempotent: a second restore finds nothing to do. The store
operations are ``apply.wal_store.WalStoreWriter``'s; this module never prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from elax_plan.apply.context import ApplyHooks, ApplyOptions
from elax_plan.apply.leases import RunLeases
from elax_plan.apply.wal_store import WalObjectDiffers, WalStoreWriter, archive_prefix, wal_name
from elax_plan.errors import TargetError, WalRestoreConflict
from elax_plan.execution_plan import format_bytes
from elax_plan.live.model import WalObject
from elax_plan.spec import PlanSpec, display_url
from elax_plan.state import LeaseInfo, open_backend

__all__ = ["RestoreConflict", "RestorePlan", "plan_restore", "restore_wal"]


@dataclass(frozen=True)
class RestoreConflict:
    """An archived object whose sequence ``wal/`` holds with other bytes (sizes in bytes)."""

    sequence: int
    archived: int
    present: int

    def describe(self) -> str:
        return (
            f"{wal_name(self.sequence)} (archived {self.archived} bytes, in wal/ "
            f"{self.present} bytes)"
        )


@dataclass
class RestorePlan:
    """What a restore of one namespace does; ``restored`` counts what it did."""

    namespace: str
    store: str
    moves: list[WalObject] = field(default_factory=list)
    in_place: list[WalObject] = field(default_factory=list)  # archived copy left to remove
    conflicts: list[RestoreConflict] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    restored: int = 0
    restored_bytes: int = 0

    @property
    def empty(self) -> bool:
        return not (self.moves or self.in_place or self.conflicts)

    @property
    def move_bytes(self) -> int:
        return sum(o.size for o in self.moves)

    def describe(self) -> str:
        """The moves in one sentence (without a verb): count, size, sequences, from, to."""
        n = len(self.moves)
        text = (
            f"{n} WAL object{'s' if n != 1 else ''} ({format_bytes(self.move_bytes)})"
            + (f", sequences {_ranges([o.sequence for o in self.moves])}," if self.moves else "")
            + f" from {archive_prefix(self.namespace)}/ to namespaces/{self.namespace}/wal/ in "
            f"{display_url(self.store)}"
        )
        if self.in_place:
            k = len(self.in_place)
            text += (
                f"; {k} already back in wal/ with the same bytes (its archived "
                f"cop{'ies' if k != 1 else 'y'} to be removed)"
            )
        return text


def plan_restore(store: WalStoreWriter, namespace: str) -> RestorePlan:
    """What ``restore_wal`` would do now; reads only archived objects ``wal/`` also has."""
    archived, others = store.list_archive(namespace)
    present = {o.sequence for o in store.read_namespace(namespace).wal_objects}
    plan = RestorePlan(namespace, store.url, ignored=list(others))
    for obj in archived:
        if obj.sequence not in present:
            plan.moves.append(obj)
            continue
        mine = store.read_archived(namespace, obj.sequence)
        theirs = store.read_wal_object(namespace, obj.sequence)
        if mine is None or theirs is None:
            plan.moves.append(obj)  # gone since the listing: restore_wal sorts it out
        elif mine == theirs:
            plan.in_place.append(obj)
        else:
            plan.conflicts.append(RestoreConflict(obj.sequence, len(mine), len(theirs)))
    return plan


def restore_wal(
    spec: PlanSpec,
    *,
    dry_run: bool = False,
    lock_timeout: float = 0.0,
    plan_file: str | None = None,
    on_lock_wait: Callable[[LeaseInfo], None] | None = None,
    lease_renew: float = 10.0,
) -> RestorePlan:
    """Restore the archived WAL of ``spec``'s namespace under the plan's and the namespace's
    leases.

    ``dry_run`` only plans (no lease: it changes nothing). A conflict raises
    ``WalRestoreConflict`` before anything moves.
    """
    t = spec.target
    store = WalStoreWriter(t.store, t.storage_options)
    if dry_run:
        return _checked(plan_restore(store, t.namespace))
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    # The plan's lease and the namespace's: no apply of this plan, nor of another plan on
    # this namespace, writes or indexes beside the restore.
    leases = RunLeases(
        backend,
        spec,
        ApplyOptions(lock_timeout=lock_timeout, lease_renew=lease_renew),
        ApplyHooks(on_lock_wait=on_lock_wait or (lambda _: None)),
        threading.Event(),
        plan_file,
        action="wal restore",
    )
    _, heartbeat = leases.take()
    try:
        # Planned under the leases: what an apply did before it is seen.
        plan = _checked(plan_restore(store, t.namespace))
        for obj in plan.in_place + plan.moves:
            heartbeat.check()  # a lost lease: another run may hold the plan now
            _move(store, plan, obj)
        heartbeat.check()
    finally:
        leases.release()  # a lease it cannot release expires by itself
    return plan


def _checked(plan: RestorePlan) -> RestorePlan:
    if plan.conflicts:
        raise _conflict(plan, plan.conflicts)
    return plan


def _move(store: WalStoreWriter, plan: RestorePlan, obj: WalObject) -> None:
    try:
        size = store.restore(plan.namespace, obj.sequence)
    except FileNotFoundError:
        return  # restored meanwhile (the listing is older than the move)
    except WalObjectDiffers as exc:
        raise _conflict(plan, [RestoreConflict(exc.sequence, exc.archived, exc.present)]) from exc
    except Exception as exc:  # every fsspec backend raises its own errors
        raise TargetError(
            f"WAL restore stopped at {wal_name(obj.sequence)} in {display_url(plan.store)}: {exc}.",
            f"{plan.restored} object(s) were restored before it.",
            hint="Nothing was lost (an archived object is removed only once wal/ holds the "
            "same bytes); fix the store access and run `elax-plan wal restore` again.",
        ) from exc
    if obj in plan.moves:
        plan.restored += 1
        plan.restored_bytes += size


def _conflict(plan: RestorePlan, conflicts: list[RestoreConflict]) -> WalRestoreConflict:
    shown = ", ".join(c.describe() for c in conflicts[:10])
    more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
    done = f" {plan.restored} object(s) were restored before it." if plan.restored else ""
    return WalRestoreConflict(
        f"Refusing to restore the archived WAL of namespace '{plan.namespace}': "
        f"namespaces/{plan.namespace}/wal/ in {display_url(plan.store)} already holds "
        f"different bytes for {shown}{more}.{done}",
        "The object in wal/ is what the node replays and is never replaced.",
        hint="Compare the two: an interrupted archive leaves a partial archived copy beside its "
        "original (then remove the archived copy); anything else needs someone to decide which "
        "is right. Then run `elax-plan wal restore` again.",
    )


def _ranges(seqs: list[int]) -> str:
    """``1–4, 7, 9–10``: sequences as runs (at most 5 shown)."""
    runs: list[tuple[int, int]] = []
    for s in sorted(seqs):
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    parts = [f"{a}–{b}" if a != b else f"{a}" for a, b in runs[:5]]
    if len(runs) > 5:
        parts.append(f"… ({len(runs) - 5} more runs)")
    return ", ".join(parts)
