"""The background indexer: tails each namespace's WAL, builds parts, advances ``indexed_wal``.

What the design promises and ``elax-cli compact`` does once (CONTRACT §5), run
continuously and at a configurable pace. One run over a namespace reads the
batches after ``indexed_wal``, cuts a part whenever 256 upserts have
accumulated after a batch, flushes the remainder, writes assets then manifest,
then publishes through the router (``indexed_wal`` = last non-empty batch,
epoch + 1). More than 4 active parts are merged into one. Router updates go
through ``Namespace.publish_index`` under the namespace lock. Parts are built by
``parts.py``, which ``elax-plan emulator compact`` (the real server's only
indexer) uses too.

Its thread runs only with ``indexer="background"`` (or once a test calls
``start()``, an indexer fleet coming up); the real server has no such daemon.
``run_once`` may also be called directly, one pass at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa

from elax_plan.emulator.layout import PartManifest
from elax_plan.emulator.model import EmulatorError
from elax_plan.emulator.namespace import Namespace, Namespaces
from elax_plan.emulator.parts import Bucket, flush_bucket, merge_parts
from elax_plan.emulator.storage import Stores

log = logging.getLogger("elax_plan.emulator.indexer")


@dataclass
class IndexerStats:
    parts_materialized: dict[str, int] = field(default_factory=dict)
    parts_compacted: dict[str, int] = field(default_factory=dict)
    compactions: dict[str, int] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)


class Indexer:
    """Runs index passes over every namespace on a timer, in one daemon thread."""

    def __init__(
        self,
        namespaces: Namespaces,
        stores: Stores,
        *,
        interval: float = 0.2,
        rows_per_s: float | None = None,
        rows_per_part: int = 256,
        max_active_parts: int = 4,
    ) -> None:
        self.namespaces = namespaces
        self.stores = stores
        self.interval = interval
        self.rows_per_s = rows_per_s
        self.rows_per_part = rows_per_part
        self.max_active_parts = max_active_parts
        self.stats = IndexerStats()
        self.ticks = 0
        # Rows and tombstones of the parts this indexer wrote, so a merge need not read and
        # decompress them again (merges rewrite everything, so re-reading would double the cost).
        self._part_rows: dict[str, tuple[pa.Table, list[str]]] = {}
        self._credit: dict[str, float] = {}
        self._last_tick: dict[str, float] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="elacsym-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            for ns in self.namespaces:
                if self._stop.is_set():
                    break
                try:
                    self.run_once(ns)
                except EmulatorError as exc:
                    log.warning("indexer skipped namespace %s: %s", ns.name, exc.message)
                except Exception:
                    log.exception("indexer run failed for namespace %s", ns.name)
            self.ticks += 1
            self._wake.wait(self.interval)
            self._wake.clear()

    # --- one run --------------------------------------------------------------------------

    def _budget(self, ns: Namespace) -> float:
        if self.rows_per_s is None:
            return float("inf")
        now = time.monotonic()
        last = self._last_tick.get(ns.name, now)
        self._last_tick[ns.name] = now
        credit = self._credit.get(ns.name, 0.0) + (now - last) * self.rows_per_s
        self._credit[ns.name] = credit
        return credit

    def run_once(self, ns: Namespace) -> bool:
        """One indexer run over ``ns``; True when it published anything."""
        ns.ensure_loaded()
        with ns.lock:
            router = ns.router
        if router.wal_highwater <= router.indexed_wal:
            self._credit[ns.name] = 0.0
            self._last_tick.pop(ns.name, None)
            return False
        budget = self._budget(ns)
        if budget <= 0:
            return False
        parts: list[PartManifest] = []
        bucket = Bucket()
        last_nonempty: int | None = None
        seen = False
        spent = 0
        for seq in range(router.indexed_wal + 1, router.wal_highwater + 1):
            if spent >= budget:
                break
            batch = ns.batch(seq)
            seen = True
            if not batch.operations:
                continue  # H3: empty batches never move indexed_wal
            spent += bucket.add(seq, batch)
            last_nonempty = seq
            if len(bucket.upserts) >= self.rows_per_part:
                parts.append(self._flush(ns.name, bucket))
                bucket = Bucket()
        if not bucket.empty:
            parts.append(self._flush(ns.name, bucket))
        if not seen:
            return False
        if self.rows_per_s is not None:
            self._credit[ns.name] = budget - spent
        published = ns.publish_index(last_nonempty, tuple(parts))
        self.stats.runs[ns.name] = self.stats.runs.get(ns.name, 0) + 1
        if len(published.parts) > self.max_active_parts:
            self._compact(ns)
        return True

    def _flush(self, ns_name: str, bucket: Bucket) -> PartManifest:
        part, rows = flush_bucket(self.stores, ns_name, bucket)
        self._part_rows[part.id] = (rows, list(bucket.deletes))
        self.stats.parts_materialized[ns_name] = self.stats.parts_materialized.get(ns_name, 0) + 1
        return part

    def _compact(self, ns: Namespace) -> None:
        with ns.lock:
            old = ns.router.parts
        merged = merge_parts(self.stores, ns.name, old, self._part_rows)
        ns.publish_index(merged.wal_end, (merged,), replace_parts=True)
        self.stats.parts_compacted[ns.name] = self.stats.parts_compacted.get(ns.name, 0) + 1
        self.stats.compactions[ns.name] = self.stats.compactions.get(ns.name, 0) + 1
