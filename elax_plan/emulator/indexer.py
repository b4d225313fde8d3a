"""The background indexer: tails each namespace's WAL, builds parts, advances ``indexed_wal``.

What the design promises and ``elax-cli compact`` does once (CONTRACT §5), run
continuously and at a configurable pace. One run over a namespace reads the
batches after ``indexed_wal``, cuts a part whenever 256 upserts have
accumulated after a batch, flushes the remainder, writes assets then manifest,
then publishes through the router (``indexed_wal`` = last non-empty batch,
epoch + 1). More than 4 active parts are merged into one. Router updates go
through ``Namespace.publish_index`` under the namespace lock.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from elax_plan.emulator.layout import (
    Delete,
    PartManifest,
    Upsert,
    WalBatch,
    encode_attributes,
    encode_manifest,
    manifest_key,
    part_asset_prefix,
    part_id_for,
)
from elax_plan.emulator.model import EmulatorError
from elax_plan.emulator.namespace import Namespace, Namespaces
from elax_plan.emulator.storage import Store

log = logging.getLogger("elax_plan.emulator.indexer")

_PART_COUNTER = itertools.count(1)
_ROWS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.utf8(), nullable=False),
        pa.field("vector", pa.list_(pa.float32())),
        pa.field("attributes", pa.large_utf8()),
    ]
)


@dataclass
class IndexerStats:
    parts_materialized: dict[str, int] = field(default_factory=dict)
    parts_compacted: dict[str, int] = field(default_factory=dict)
    compactions: dict[str, int] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)


@dataclass
class _Bucket:
    start: int = 0
    end: int = 0
    upserts: list[Upsert] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.upserts and not self.deletes


def _rows_table(upserts: list[Upsert]) -> pa.Table:
    ids = [u.document.id for u in upserts]
    lengths = np.zeros(len(upserts) + 1, dtype=np.int32)
    chunks = []
    mask = np.zeros(len(upserts), dtype=bool)
    for i, u in enumerate(upserts):
        vec = u.document.vector
        if vec is None:
            mask[i] = True
            lengths[i + 1] = 0
        else:
            chunks.append(vec)
            lengths[i + 1] = len(vec)
    offsets = np.cumsum(lengths, dtype=np.int32)
    values = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float32)
    vectors = pa.ListArray.from_arrays(
        pa.array(offsets, type=pa.int32()),
        pa.array(values, type=pa.float32()),
        mask=pa.array(mask) if mask.any() else None,
    )
    attributes = pa.array(
        [
            None if u.document.attributes is None else encode_attributes(u.document.attributes)
            for u in upserts
        ],
        type=pa.large_binary(),
    ).cast(pa.large_utf8())
    return pa.Table.from_arrays(
        [pa.array(ids, type=pa.utf8()), vectors, attributes], schema=_ROWS_SCHEMA
    )


class Indexer:
    """Runs index passes over every namespace on a timer, in one daemon thread."""

    def __init__(
        self,
        namespaces: Namespaces,
        store: Store,
        *,
        interval: float = 0.2,
        rows_per_s: float | None = None,
        stalled: bool = False,
        rows_per_part: int = 256,
        max_active_parts: int = 4,
    ) -> None:
        self.namespaces = namespaces
        self.store = store
        self.interval = interval
        self.rows_per_s = rows_per_s
        self.stalled = stalled
        self.rows_per_part = rows_per_part
        self.max_active_parts = max_active_parts
        self.stats = IndexerStats()
        self.ticks = 0
        # Rows of the parts this indexer wrote, so a merge need not read and decompress them
        # again (merges rewrite everything, so re-reading would double their cost).
        self._part_rows: dict[str, pa.Table] = {}
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
            if not self.stalled:
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
        bucket = _Bucket()
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
            spent += self._add(bucket, seq, batch)
            last_nonempty = seq
            if len(bucket.upserts) >= self.rows_per_part:
                parts.append(self._flush(ns.name, bucket))
                bucket = _Bucket()
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

    def _add(self, bucket: _Bucket, seq: int, batch: WalBatch) -> int:
        if bucket.empty:
            bucket.start = seq
        bucket.end = seq
        n = 0
        for op in batch.operations:
            if isinstance(op, Upsert):
                bucket.upserts.append(op)
                n += 1
            elif isinstance(op, Delete):
                bucket.deletes.append(op.id)
        return max(n, 1)

    def _flush(self, ns_name: str, bucket: _Bucket) -> PartManifest:
        part = PartManifest(
            id=self._new_part_id(ns_name),
            wal_start=bucket.start,
            wal_end=bucket.end,
            rows=len(bucket.upserts),
            tombstones=len(bucket.deletes),
        )
        self._write_part(ns_name, part, _rows_table(bucket.upserts), bucket.deletes)
        self.stats.parts_materialized[ns_name] = self.stats.parts_materialized.get(ns_name, 0) + 1
        return part

    @staticmethod
    def _new_part_id(ns_name: str) -> str:
        return part_id_for(ns_name, time.time_ns() // 1000, next(_PART_COUNTER))

    def _write_part(
        self, ns_name: str, part: PartManifest, rows: pa.Table, tombstones: list[str]
    ) -> None:
        """Assets first, manifest last: a manifest never names assets that are not there."""
        prefix = part_asset_prefix(ns_name, part.id)
        sink = pa.BufferOutputStream()
        # Dictionary encoding of random floats only costs time (6x slower, larger files).
        pq.write_table(
            rows, sink, compression="zstd", use_compliant_nested_type=False, use_dictionary=False
        )
        self.store.write(f"{prefix}/segment/rows.parquet", sink.getvalue().to_pybytes())
        if tombstones:
            self.store.write(
                f"{prefix}/segment/tombstones.json",
                orjson.dumps(tombstones, option=orjson.OPT_INDENT_2),
            )
        meta: dict[str, Any] = {
            "generated_at": time.time_ns() // 1_000_000,
            "lists": 0,
            "tombstones": len(tombstones),
            "vectors": rows.num_rows,
        }
        self.store.write(f"{prefix}/ivf/meta.json", orjson.dumps(meta, option=orjson.OPT_INDENT_2))
        self.store.write(f"{prefix}/ivf/centroids.bin", b"")
        self.store.write(f"{prefix}/ivf/postings/.keep", b"")
        self.store.write(f"{prefix}/filters/bitmaps/.keep", b"")
        self.store.write(manifest_key(ns_name, part.id), encode_manifest(part))
        self._part_rows[part.id] = rows

    def _compact(self, ns: Namespace) -> None:
        with ns.lock:
            old = ns.router.parts
        tables = []
        tombstones: list[str] = []
        for p in old:
            prefix = part_asset_prefix(ns.name, p.id)
            cached = self._part_rows.pop(p.id, None)
            if cached is not None:
                tables.append(cached)
                continue
            data = self.store.read(f"{prefix}/segment/rows.parquet")
            if data is not None:
                tables.append(pq.read_table(pa.BufferReader(data), schema=_ROWS_SCHEMA))
            if p.tombstones:
                raw = self.store.read(f"{prefix}/segment/tombstones.json")
                if raw is not None:
                    tombstones.extend(orjson.loads(raw))
        rows = pa.concat_tables(tables) if tables else _rows_table([])
        merged = PartManifest(
            id=self._new_part_id(ns.name),
            wal_start=min(p.wal_start for p in old),
            wal_end=max(p.wal_end for p in old),
            rows=sum(p.rows for p in old),
            compacted_from=tuple(p.id for p in old),
            tombstones=sum(p.tombstones for p in old),
        )
        self._write_part(ns.name, merged, rows, tombstones)
        for p in old:
            self.store.delete(manifest_key(ns.name, p.id))
            self.store.delete_tree(part_asset_prefix(ns.name, p.id))
        ns.publish_index(merged.wal_end, (merged,), replace_parts=True)
        self.stats.parts_compacted[ns.name] = self.stats.parts_compacted.get(ns.name, 0) + 1
        self.stats.compactions[ns.name] = self.stats.compactions.get(ns.name, 0) + 1
