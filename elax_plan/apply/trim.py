"""WAL trim (SPEC §5 step 7): archive or delete WAL objects the index no longer needs.

Owns the one destructive step of elax-plan. Eligible objects are those
``live.model.eligible_wal_objects`` selects, the same rule the plan showed
(sequence ≤ ``indexed_wal``, older than ``older_than``, not among the newest
``keep_last``), listed afresh here.
``archive`` copies each object under ``namespaces/<ns>/wal-archive/`` and
deletes the original only once the copy is verified (same bytes), so an
interruption at any point loses nothing and a re-run finishes the job;
``delete`` deletes. Both are idempotent: a second run finds nothing to do.
The store operations themselves go through ``apply.wal_store.WalStoreWriter``;
this module decides what to trim and how a failure is reported, and never
touches the store's filesystem directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from elax_plan.apply.wal_store import WalStoreWriter, archive_prefix, wal_name
from elax_plan.errors import TargetError
from elax_plan.execution_plan import PostStep
from elax_plan.live.model import eligible_wal_objects
from elax_plan.spec import TargetSpec, display_url


@dataclass
class TrimResult:
    mode: str
    objects: int = 0
    bytes: int = 0
    first_sequence: int | None = None
    last_sequence: int | None = None
    archive_prefix: str | None = None
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "objects": self.objects,
            "bytes": self.bytes,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "archive_prefix": self.archive_prefix,
            "errors": self.errors,
        }


def trim_wal(
    store: WalStoreWriter,
    namespace: str,
    *,
    mode: Literal["archive", "delete"],
    older_than: float,
    keep_last: int,
    now: float | None = None,
) -> TrimResult:
    """Archive or delete the eligible WAL objects of ``namespace``; see the module docstring."""
    live = store.read_namespace(namespace)
    moment = time.time() if now is None else now
    eligible = eligible_wal_objects(
        live.wal_objects, live.indexed_wal, moment, older_than, keep_last
    )
    archive = archive_prefix(namespace)
    result = TrimResult(mode, archive_prefix=archive if mode == "archive" else None)
    for obj in eligible:
        try:
            if mode == "archive":
                store.archive(namespace, obj.sequence)
            else:
                store.delete(namespace, obj.sequence)
        except FileNotFoundError:
            continue  # trimmed by an earlier, interrupted run
        except Exception as exc:  # every fsspec backend raises its own errors
            raise TargetError(
                f"WAL trim stopped at {wal_name(obj.sequence)} in {display_url(store.url)}: {exc}.",
                hint="Nothing was lost (an object is deleted only after its archived copy is "
                "verified); fix the store access and run `elax-plan apply` again.",
            ) from exc
        result.objects += 1
        result.bytes += obj.size
        if result.first_sequence is None:
            result.first_sequence = obj.sequence
        result.last_sequence = obj.sequence
    return result


def trim_step(target: TargetSpec, step: PostStep) -> TrimResult:
    """The execution plan's ``wal_trim`` step against ``target.store``, as planned."""
    return trim_wal(
        WalStoreWriter(target.store, target.storage_options),
        target.namespace,
        mode=step.params["mode"],
        older_than=float(step.params["older_than_s"]),
        keep_last=int(step.params["keep_last"]),
    )
