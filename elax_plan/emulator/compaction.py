"""``elax-plan emulator compact``: what ``elax-cli compact`` does (CONTRACT §5, §6.1), on disk.

The real server's only indexer. ``run_until_idle`` repeats ``run_once`` until
a run does nothing. One run reads ``router.json`` at its start, loads every
WAL batch after ``indexed_wal``, cuts a part whenever 256 upserts have
accumulated after a batch, flushes the remainder, and — if any batch was
seen — writes the router back with ``indexed_wal`` = last non-empty batch and
epoch + 1; then, with more than 4 active parts, merges them all into one and
writes the router again.

It works on the files alone, with no lock, while a server may be running on
the same data root: the router it writes back carries the ``wal_highwater``
it read at the start, so an append in between is set back (hazard H2), and
an append that reads the router in between drops this run's update. Trailing
empty batches make it loop forever (hazard H3), as the real one does;
``max_runs`` bounds that for tests.

Must not talk to a server or take locks a real ``elax-cli`` would not take:
its only coordination with a running node is the files themselves.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elax_plan.emulator import real_store
from elax_plan.emulator.layout import PartManifest, Router
from elax_plan.emulator.model import EmulatorError
from elax_plan.emulator.parts import Bucket, flush_bucket, merge_parts
from elax_plan.emulator.real_store import RealStoreError
from elax_plan.emulator.storage import Stores, open_stores

ROWS_PER_PART = 256
MAX_ACTIVE_PARTS = 4


@dataclass(frozen=True)
class CompactResult:
    """The router after the last run, and how many runs it took."""

    namespace: str
    router: Router
    runs: int

    def line(self) -> str:
        """The real CLI's stdout line."""
        return (
            f"compacted namespace '{self.namespace}' to {len(self.router.parts)} parts "
            f"(indexed_wal={self.router.indexed_wal})"
        )


class CompactError(Exception):
    """A failed compaction: a top-level message and the chain of causes (anyhow's shape)."""

    def __init__(self, message: str, *causes: str) -> None:
        super().__init__(message)
        self.message = message
        self.causes = causes

    def report(self) -> str:
        """What the real binary prints on stderr: ``Error: …`` then ``Caused by:``."""
        text = f"Error: {self.message}"
        if len(self.causes) == 1:
            text += f"\n\nCaused by:\n    {self.causes[0]}"
        elif self.causes:
            text += "\n\nCaused by:\n" + "\n".join(
                f"    {i}: {cause}" for i, cause in enumerate(self.causes)
            )
        return text


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def compact(
    data_root: str,
    namespace: str,
    *,
    object_store: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    rows_per_part: int = ROWS_PER_PART,
    max_active_parts: int = MAX_ACTIVE_PARTS,
    max_runs: int | None = None,
) -> CompactResult:
    """Index ``namespace`` under ``data_root`` until idle; raises ``CompactError``."""
    try:
        stores = open_stores("", storage_options, data_root=data_root, object_store=object_store)
    except (ValueError, OSError) as exc:
        raise CompactError("initializing object-store backend", str(exc)) from exc
    return compact_stores(
        stores,
        namespace,
        rows_per_part=rows_per_part,
        max_active_parts=max_active_parts,
        max_runs=max_runs,
    )


def compact_stores(
    stores: Stores,
    namespace: str,
    *,
    rows_per_part: int = ROWS_PER_PART,
    max_active_parts: int = MAX_ACTIVE_PARTS,
    max_runs: int | None = None,
) -> CompactResult:
    """``compact`` on stores already open (an embedded emulator's own)."""
    runs = 0
    while True:
        if max_runs is not None and runs >= max_runs:
            raise CompactError(
                f"namespace {namespace} still had work after {runs} runs",
                "the newest WAL batches are empty, so indexed_wal never passes them (hazard H3)",
            )
        runs += 1
        router, did_work = run_once(stores, namespace, rows_per_part, max_active_parts)
        if not did_work:
            return CompactResult(namespace, router, runs)


def run_once(
    stores: Stores, ns: str, rows_per_part: int, max_active_parts: int
) -> tuple[Router, bool]:
    """One indexer run; the router it left and whether it did any work."""
    router = _load_router(stores, ns)
    try:
        batches = real_store.load_batches_since(stores.meta, ns, router.indexed_wal + 1)
    except RealStoreError as exc:
        raise CompactError(f"loading WAL for namespace {ns}", exc.message, *exc.causes) from exc
    new_parts: list[PartManifest] = []
    bucket = Bucket()
    last_sequence = router.indexed_wal
    processed = 0
    try:
        for seq, batch in batches:
            processed += 1
            if not batch.operations:
                continue  # H3: an empty batch never moves indexed_wal
            last_sequence = seq
            bucket.add(seq, batch)
            if len(bucket.upserts) >= rows_per_part:
                new_parts.append(flush_bucket(stores, ns, bucket)[0])
                bucket = Bucket()
        if not bucket.empty:
            new_parts.append(flush_bucket(stores, ns, bucket)[0])
    except EmulatorError as exc:  # a PR #11 patch or filter the indexer cannot apply
        raise CompactError(exc.message) from exc
    dirty = False
    if new_parts:
        parts = tuple(sorted(router.parts + tuple(new_parts), key=lambda p: p.wal_start))
        router = dataclasses.replace(router, parts=parts)
        dirty = True
    if processed:
        router = dataclasses.replace(
            router,
            indexed_wal=max(last_sequence, router.indexed_wal),
            epoch=router.epoch + 1,
            updated_at=_now_ms(),
        )
        dirty = True
    if dirty:
        _store_router(stores, router)
    compacted = False
    if len(router.parts) > max_active_parts:
        merged = merge_parts(stores, ns, router.parts)
        router = dataclasses.replace(
            router,
            parts=(merged,),
            indexed_wal=merged.wal_end,
            epoch=router.epoch + 1,
            updated_at=_now_ms(),
        )
        _store_router(stores, router)
        compacted = True
    return router, processed > 0 or bool(new_parts) or compacted


def _load_router(stores: Stores, ns: str) -> Router:
    try:
        return real_store.load_router(stores.meta, ns, _now_ms())
    except RealStoreError as exc:
        raise CompactError(exc.message, *exc.causes) from exc


def _store_router(stores: Stores, router: Router) -> None:
    try:
        real_store.store_router(stores.meta, router)
    except RealStoreError as exc:
        raise CompactError(exc.message, *exc.causes) from exc
